// `loupe train superposition`: Elhage et al.'s toy model of superposition — one model (its W, the features'
// norms, dimensionalities and the picture of their directions), or the sweeps that reproduce the paper's
// figures: the phase diagram of two features in one dimension, and dimensions per feature against sparsity.

import ArgumentParser
import Foundation
import LoupeRender
import LoupeTraining

struct TrainSuperposition: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "superposition",
        abstract: "Toy models of superposition: n sparse features through m < n dimensions, x' = ReLU(WᵀWx + b).",
        discussion: """
            Each feature is 0 with probability --sparsity and uniform on [0, 1] otherwise; the loss weights \
            feature i by --importance-decay^i. Prints W (dims × features), each feature's norm ‖W_i‖ (≈1: \
            represented), its dimensionality D_i = ‖W_i‖²/Σ_j(Ŵ_i·W_j)² (1: a dimension of its own; 1/2: an \
            antipodal pair; 2/5: a pentagon's corner) and dimensions per feature m/‖W‖_F². With --figures, \
            draws the features' directions (2 dimensions) and WᵀW.

            --sweep phase trains two features in one dimension over a grid of densities (1 − S) and relative \
            importances and draws the paper's phase diagram: the second feature not represented (white), on \
            a dimension of its own (blue) or in superposition with the first (red). --sweep sparsity trains \
            --features in --dims at a range of sparsities and prints dimensions per feature and how the \
            features' dimensionalities cluster (the paper's "feature dimensionality" figure).

            Examples:
              loupe train superposition --features 5 --dims 2 --sparsity 0.9 --figures toy
              loupe train superposition --sweep phase --figures toy
              loupe train superposition --sweep sparsity --features 20 --dims 5
            """)

    enum Sweep: String, ExpressibleByArgument, CaseIterable { case phase, sparsity }

    @Option(name: .long, parsing: .unconditional, help: "Features n.", transform: Count.positive) var features: Int = 5
    @Option(name: .long, parsing: .unconditional, help: "Hidden dimensions m (default: 2).", transform: Count.positive) var dims: Int = 2
    @Option(name: .long, help: "Probability that a feature is 0.") var sparsity: Float = 0.9
    @Option(name: .long, help: "Feature i's importance is this to the power i (1: all equal).") var importanceDecay: Float = 1
    @Flag(name: .long, help: "A linear read-out instead of the ReLU (the baseline that never superposes).") var linear = false
    @Option(name: .long, parsing: .unconditional, help: "Adam steps (default: 10000; 4000 for each model of a sweep).", transform: Count.positive) var steps: Int?
    @Option(name: .long, parsing: .unconditional, help: "Examples per step (default: 1024).", transform: Count.positive) var batch: Int = 1024
    @Option(name: .long, help: "Adam's learning rate.") var lr: Float = 1e-3
    @Option(name: .long, help: "Random seed (initialisation and data).") var seed: UInt64 = 0
    @Option(name: .long, parsing: .unconditional, help: "Models trained from seeds seed, seed+1, …; the lowest held-out loss is kept (default: 4; 3 per point of the phase diagram, 1 in the sparsity sweep).", transform: Count.positive)
    var instances: Int?
    @Option(name: .long, help: "Reproduce a figure of the paper instead of training one model: phase or sparsity.") var sweep: Sweep?
    @Option(name: .long, parsing: .unconditional, help: "Grid side of --sweep phase.", transform: Count.positive) var grid: Int = 12
    @Option(name: .long, help: "Folder for the figures (SVG and PNG).") var figures: String?
    @Flag(name: .long, help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard (0..<1).contains(sparsity) else { throw ValidationError("--sparsity must be in [0, 1), found \(sparsity)") }
        guard importanceDecay > 0, importanceDecay.isFinite else { throw ValidationError("--importance-decay must be positive, found \(importanceDecay)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive, found \(lr)") }
        if sweep == nil && dims >= features {
            throw ValidationError("--dims \(dims) ≥ --features \(features): every feature fits in a dimension of its own, nothing to superpose")
        }
    }

    func config(features n: Int, dims m: Int, sparsity s: Float) -> SuperpositionConfig {
        var c = SuperpositionConfig(features: n, dims: m, sparsity: s, importanceDecay: importanceDecay)
        c.relu = !linear
        c.steps = steps ?? (sweep == nil ? 10_000 : 4_000)
        c.batchSize = batch
        c.learningRate = lr
        c.seed = seed
        return c
    }

    func figureURL(_ name: String) throws -> URL? {
        guard let dir = figures else { return nil }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return URL(fileURLWithPath: dir).appendingPathComponent(name)
    }

    func run() throws {
        switch sweep {
        case nil: try single()
        case .phase?: try phase()
        case .sparsity?: try sparsitySweep()
        }
    }

    // MARK: One model

    struct SingleReport: Encodable {
        let features: Int, dims: Int, sparsity: Float, importance: [Float], relu: Bool, steps: Int
        let loss: Float
        let instanceLosses: [Float]
        let seed: UInt64
        let W: [[Float]]
        let b: [Float]
        let norms: [Float]
        let dimensionality: [Float]
        let superposition: [Float]
        let dimensionsPerFeature: Float
        let anglesDegrees: [Float]?
        enum CodingKeys: String, CodingKey {
            case features, dims, sparsity, importance, relu, steps, loss, W, b, norms, dimensionality, superposition
            case dimensionsPerFeature = "dimensions_per_feature", anglesDegrees = "angles_degrees", instanceLosses = "instance_losses", seed
        }
    }

    func single() throws {
        let c = config(features: features, dims: dims, sparsity: sparsity)
        let k = instances ?? 4
        let bar = ProgressBar(total: c.steps * k, label: "superposition")
        let (model, instanceLosses) = try SuperpositionModel.trainBest(c, instances: k) { i, step, loss in
            bar.update(completed: i * c.steps + step + 1, extra: String(format: "instance %d, loss %.5f", i + 1, loss))
        }
        bar.finish()
        let rows = (0..<c.dims).map { k in Array(model.w[(k * c.features)..<((k + 1) * c.features)]) }
        let report = SingleReport(features: c.features, dims: c.dims, sparsity: c.sparsity, importance: c.importance, relu: c.relu,
                                  steps: c.steps, loss: instanceLosses.min() ?? 0, instanceLosses: instanceLosses, seed: model.config.seed, W: rows, b: model.b, norms: model.norms,
                                  dimensionality: model.dimensionality, superposition: model.superposition,
                                  dimensionsPerFeature: model.dimensionsPerFeature, anglesDegrees: model.angles?.map { $0 * 180 / .pi })
        try writeSingleFigures(model)
        if json { try printJSON(report); return }
        print(String(format: "%d features in %d dimensions, sparsity %.3g, %@ read-out: held-out loss %.5f after %d steps (seed %llu, the best of %d: %@)",
                     c.features, c.dims, c.sparsity, c.relu ? "ReLU" : "linear", report.loss, c.steps, model.config.seed, k,
                     instanceLosses.map { String(format: "%.5f", $0) }.joined(separator: ", ")))
        print("\nW (dims × features):")
        for (k, row) in rows.enumerated() { print("  d\(k)  " + row.map { String(format: "%7.3f", $0) }.joined(separator: " ")) }
        print("\nfeature  importance   ‖W_i‖   dimensionality  superposition" + (report.anglesDegrees == nil ? "" : "   angle"))
        for i in 0..<c.features {
            var line = String(format: "  %3d    %8.3f  %7.3f  %12.3f  %13.3f", i, c.importance[i], report.norms[i], report.dimensionality[i], report.superposition[i])
            if let a = report.anglesDegrees { line += String(format: "  %6.1f°", a[i]) }
            print(line)
        }
        print(String(format: "\ndimensions per feature m/‖W‖²: %.3f", report.dimensionsPerFeature))
        if let a = report.anglesDegrees {
            let shown = zip(a, report.norms).filter { $0.1 > 0.5 }.map(\.0).sorted()
            if shown.count >= 3 {
                let gaps = shown.indices.map { i in i + 1 < shown.count ? shown[i + 1] - shown[i] : shown[0] + 360 - shown[i] }
                print("angles between neighbouring represented features: " + gaps.map { String(format: "%.1f°", $0) }.joined(separator: ", ")
                      + String(format: " (a regular %d-gon: %.1f°)", shown.count, 360 / Float(shown.count)))
            }
        }
    }

    func writeSingleFigures(_ model: SuperpositionModel) throws {
        let c = model.config
        let labels = (0..<c.features).map { "f\($0)" }
        if let url = try figureURL("gram.svg") {
            let map = try Heatmap(values: model.gram, rows: c.features, columns: c.features, rowLabels: labels, columnLabels: labels,
                                  title: "WᵀW: \(c.features) features in \(c.dims) dimensions, sparsity \(c.sparsity)")
            try map.write(to: url.path)
            try map.writePNG(to: url.deletingPathExtension().appendingPathExtension("png").path)
            if !json { print("wrote \(url.path) and gram.png") }
        }
        if c.dims == 2, let url = try figureURL("features.svg") {
            let picture = FeatureDirections(vectors: (0..<c.features).map { model.column($0) }, labels: labels,
                                            title: "\(c.features) features in 2 dimensions, sparsity \(c.sparsity)")
            try writeFile(Data(picture.svg.utf8), to: url.path)
            try picture.png().write(to: url.deletingPathExtension().appendingPathExtension("png").path)
            if !json { print("wrote \(url.path) and features.png") }
        }
    }

    // MARK: Phase diagram

    func phase() throws {
        let densities = SuperpositionSweeps.logSpaced(0.01, 1, count: grid)
        let importances = SuperpositionSweeps.logSpaced(0.1, 10, count: grid)
        let c = config(features: 2, dims: 1, sparsity: 0)
        let bar = ProgressBar(total: grid * grid, label: "phase diagram")
        let phases = try SuperpositionSweeps.phaseDiagram(densities: densities, importances: importances, relu: c.relu, steps: c.steps,
                                                          learningRate: c.learningRate, batchSize: c.batchSize, instances: instances ?? 3,
                                                          seed: seed) { bar.update(completed: $0) }
        bar.finish()
        let code: [SuperpositionPhase: Float] = [.notRepresented: 0, .dedicated: -1, .superposed: 1]
        // Rows top to bottom from the highest importance, as the paper draws it.
        let rows = Array(zip(importances, phases).reversed())
        if let url = try figureURL("phase.svg") {
            let map = try Heatmap(values: rows.flatMap { $0.1.map { code[$0] ?? 0 } }, rows: grid, columns: grid,
                                  rowLabels: rows.map { String(format: "%.2g", $0.0) }, columnLabels: densities.map { String(format: "%.2g", $0) },
                                  title: "feature 2: rows its importance, columns density 1-S; blue dedicated, red superposed, white not represented")
            try map.write(to: url.path)
            try map.writePNG(to: url.deletingPathExtension().appendingPathExtension("png").path)
            if !json { print("wrote \(url.path) and phase.png") }
        }
        if json {
            struct Out: Encodable { let densities: [Float]; let importances: [Float]; let phases: [[String]] }
            try printJSON(Out(densities: densities, importances: importances, phases: phases.map { $0.map(\.rawValue) }))
            return
        }
        print("feature 2's phase (rows: its importance relative to feature 1; columns: density 1 − S)")
        print("  S superposed, D dedicated dimension, . not represented\n")
        print("importance " + densities.map { String(format: "%6.2g", $0) }.joined(separator: ""))
        for (importance, row) in rows {
            print(String(format: "%9.2g  ", importance) + row.map { "     " + ($0 == .superposed ? "S" : $0 == .dedicated ? "D" : ".") }.joined())
        }
    }

    // MARK: Sparsity sweep

    func sparsitySweep() throws {
        guard dims < features else { throw ValidationError("--dims \(dims) must be below --features \(features)") }
        let sparsities: [Float] = [0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
        struct Point: Encodable {
            let sparsity: Float, loss: Float, dimensionsPerFeature: Float, represented: Int, dimensionality: [Float]
            enum CodingKeys: String, CodingKey { case sparsity, loss, represented, dimensionality; case dimensionsPerFeature = "dimensions_per_feature" }
        }
        var points: [Point] = []
        let bar = ProgressBar(total: sparsities.count, label: "sparsity sweep")
        for (i, s) in sparsities.enumerated() {
            let (model, _) = try SuperpositionModel.trainBest(config(features: features, dims: dims, sparsity: s), instances: instances ?? 1)
            points.append(Point(sparsity: s, loss: model.losses.last ?? 0, dimensionsPerFeature: model.dimensionsPerFeature,
                                represented: model.norms.filter { $0 > 0.5 }.count, dimensionality: model.dimensionality))
            bar.update(completed: i + 1)
        }
        bar.finish()
        if json { try printJSON(points); return }
        print("\(features) features in \(dims) dimensions: dimensions per feature m/‖W‖² against sparsity")
        print("sparsity  1/(1−S)  represented  dims/feature  dimensionalities (rounded, most common first)")
        for p in points {
            var counts: [Float: Int] = [:]
            for d in p.dimensionality where d > 0.05 { counts[(d * 20).rounded() / 20, default: 0] += 1 }
            let common = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key > $1.key }.prefix(4)
                .map { String(format: "%.2f×%d", $0.key, $0.value) }.joined(separator: " ")
            print(String(format: "%8.2f  %7.1f  %11d  %12.3f  %@", p.sparsity, 1 / (1 - p.sparsity), p.represented, p.dimensionsPerFeature, common))
        }
    }
}
