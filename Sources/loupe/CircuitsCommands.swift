import ArgumentParser
import Foundation
import LoupeInterp
import LoupeFormats
import LoupeModels
import LoupeRender
import LoupeStore
import LoupeTensor

struct Circuits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Weight-based circuits: OV copying scores, Q/K/V composition scores, one head's full OV or QK circuit.",
        discussion: """
            loupe circuits copying | composition | ov --head L.H | qk --head L.H [--query-position P --key-position P]

            Examples:
              loupe circuits copying --model smollm2-135m
              loupe circuits composition --model smollm2-135m --top 5
              loupe circuits ov --head 1.1 --tokens "Elizabeth, Darcy, Bennet"
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "copying, composition, ov, or qk.")
    var what: CircuitKind

    @Option(name: .long, help: "For ov: the head, LAYER.HEAD.") var head: String?
    @Option(name: .long, help: "For ov and qk: comma-separated source words (each read as \" word\").") var tokens: String?
    @Option(name: .long, help: "For qk: add the positional embedding of this query position (models with W_pos).") var queryPosition: Int?
    @Option(name: .long, help: "For qk: add the positional embedding of this key position.") var keyPosition: Int?
    @Option(name: [.customLong("top"), .customLong("pairs")], parsing: .unconditional, help: "How many to list: for ov, tokens per source (default 5); for composition, pairs per mode (default 10).", transform: Count.nonNegative) var top: Int?
    @Option(name: .long, help: "For composition with --svg/--png: the mode drawn (q, k or v); --html draws all three.") var mode: CompositionMode = .k
    @Flag(name: .long, help: "Print JSON (composition: {\"q\": [L][H][L][H], \"k\": …, \"v\": …}).") var json = false
    @OptionGroup var figures: FigureOptions

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let (nL, h) = (model.config.nLayers, model.config.nHeads)
        let metadata = [("model", modelOptions.model)]
        switch what {
        case .copying:
            let scores = try model.copyingScores()
            if figures.wanted {
                let map = try Heatmap(values: scores.scalars, rows: nL, columns: h, rowLabels: layerLabels(nL), columnLabels: headLabels(h),
                                      title: "OV copying scores (1 = copies what it attends to)")
                try figures.write(heatmap: { map }, views: { [map] }, title: "OV copying scores", metadata: metadata)
            }
            try figures.write(tensors: { [ResultTensor("copying", scores, axes: ["layer", "head"])] }, settings: metadata)
            if json { try printJSON(AnyNested(scores)); return }
            print("OV copying scores (Σ Re λ / Σ |λ| of W_E W_V W_O W_U; 1 = copies what it attends to)")
            printGrid(rowLabels: (0..<nL).map { "L\($0)" }, columnLabels: (0..<h).map { "H\($0)" }, values: { scores.scalars[$0 * h + $1] }, format: "%.2f")
        case .composition:
            var all: [String: AnyNested] = [:]
            var tensors: [(CompositionMode, Tensor)] = []
            let progress = ProgressReporter("composition")
            let perMode = nL * h
            for (m, mode) in CompositionMode.allCases.enumerated() {
                let t = try model.compositionScores(mode) { done, _ in progress.update(m * perMode + done, 3 * perMode, extra: "\(mode.rawValue)-composition") }
                all[mode.rawValue] = AnyNested(t)
                tensors.append((mode, t))
            }
            progress.finish()
            if figures.wanted {
                // [earlier head, later head] over all heads (layer-major): rows send, columns receive.
                let names = (0..<(nL * h)).map { "L\($0 / h)H\($0 % h)" }
                let maps = try tensors.map { m, t in
                    try Heatmap(values: t.scalars, rows: nL * h, columns: nL * h, rowLabels: names, columnLabels: names,
                                title: "\(m.rawValue.uppercased())-composition scores (row: earlier head, column: later head)", scale: .sequential)
                }
                let drawn = tensors.firstIndex { $0.0 == self.mode } ?? 0
                try figures.write(heatmap: { maps[drawn] }, views: { maps }, title: "Composition scores", metadata: metadata)
            }
            // The chosen mode first (the --npy one): [earlier layer, head, later layer, head], as TransformerLens's.
            let ordered = tensors.filter { $0.0 == mode } + tensors.filter { $0.0 != mode }
            try figures.write(tensors: {
                ordered.map { ResultTensor($0.0.rawValue, $0.1, axes: ["sender_layer", "sender_head", "receiver_layer", "receiver_head"]) }
            }, settings: metadata)
            if json { try printJSON(all); return }
            for (mode, t) in tensors {
                let order = t.scalars.indices.sorted { t.scalars[$0] > t.scalars[$1] }.prefix(top ?? 10)
                print("\n\(mode.rawValue.uppercased())-composition, strongest pairs (earlier head → later head):")
                for i in order {
                    let (a, b) = (i / (nL * h), i % (nL * h))
                    print("  L\(a / h)H\(a % h) → L\(b / h)H\(b % h)  " + String(format: "%.3f", t.scalars[i]))
                }
            }
        case .ov, .qk:
            let (layer, head) = try parseHead(head, option: "--head")
            let full = what == .ov
                ? try model.fullOVCircuit(layer: layer, head: head)
                : try model.fullQKCircuit(layer: layer, head: head, queryPosition: queryPosition, keyPosition: keyPosition)
            print(what == .ov
                  ? "full OV circuit of L\(layer)H\(head): what attending to a token makes likely (row of W_E W_V W_O W_U)"
                  : "full QK circuit of L\(layer)H\(head): the keys each query token scores highest (no norms applied)")
            // Rows of the factored [d_vocab, d_vocab] circuit, one source token at a time.
            let tokenizer = try loaded.requireTokenizer()
            let sources = (tokens ?? " the, cat, Paris, John, Mary, 1, and").split(separator: ",").map { " " + $0.trimmingCharacters(in: .whitespaces) }
            if figures.wanted {
                // The circuit restricted to the source tokens, both ways: [source, source].
                let ids = sources.compactMap { tokenizer.encode($0).first }
                let rows = try Tensor.embedding(full.a, ids).matmul(full.b)   // [sources, d_vocab]
                let v = rows.shape[1]
                let names = ids.map(loaded.tokenText)
                let map = try Heatmap(values: ids.indices.flatMap { r in ids.map { rows.scalars[r * v + $0] } }, rows: ids.count, columns: ids.count,
                                      rowLabels: names, columnLabels: names,
                                      title: what == .ov ? "L\(layer)H\(head) full OV circuit (row: attended token, column: logit)"
                                                          : "L\(layer)H\(head) full QK circuit (row: query token, column: key token)")
                try figures.write(heatmap: { map }, views: { [map] }, title: "\(what.rawValue.uppercased()) circuit of L\(layer)H\(head)", metadata: metadata)
            }
            // The [d_vocab, d_vocab] circuit as its two factors: circuit = a @ b.
            try figures.write(tensors: {
                what == .ov ? [ResultTensor("a", full.a, axes: ["source", "inner"]), ResultTensor("b", full.b, axes: ["inner", "logit"])]
                            : [ResultTensor("a", full.a, axes: ["query", "inner"]), ResultTensor("b", full.b, axes: ["inner", "key"])]
            }, settings: metadata + [("circuit", "\(what.rawValue) L\(layer)H\(head) = a @ b")])
            for text in sources {
                guard let t = tokenizer.encode(text).first else { continue }
                let row = try Tensor.embedding(full.a, [t]).matmul(full.b)   // [1, d_vocab]
                let best = topK(row.scalars[...], k: top ?? 5)
                print("  \(shown(loaded.tokenText(t))) → " + best.map { "\(shown(loaded.tokenText($0.index))) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))
            }
        }
    }
}

/// What `loupe circuits` computes.
enum CircuitKind: String, CaseIterable, ExpressibleByArgument {
    case copying, composition, ov, qk
}

struct ProcessWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Write the model with TransformerLens's weight processing, in its layout, as safetensors (loadable by Loupe and from Python).",
        discussion: """
            Example:
              loupe process --model smollm2-135m --out smollm2-processed
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Output folder.") var out: String
    @Flag(name: .long, help: "Skip processing: write the weights as loaded.") var raw = false

    func run() throws {
        let loaded = try modelOptions.load()
        let model = raw ? loaded.model : try loaded.model.processed()
        try TransformerLensFormat.write(model, to: URL(fileURLWithPath: out))
        print("wrote \(out)/model.safetensors (\(model.weights.namedTensors.count) tensors, TransformerLens names) and config.json")
    }
}

struct PCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "Residual PCA across layers: per predicted position, the first direction's share of variance and whether it names the prediction.",
        discussion: """
            Example:
              loupe pca --model smollm2-135m --text emma.txt --chars 40000
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Text to analyse.") var prompt: String?
    @Option(name: [.customLong("text"), .customLong("corpus")], help: "A UTF-8 text file to analyse.") var text: String?
    @Option(name: .long, parsing: .unconditional, help: "Only the first N characters of the file.", transform: Count.nonNegative) var chars: Int?
    @Option(name: .long, parsing: .unconditional, help: "Tokens per forward pass.", transform: Count.positive) var window: Int = 128
    @Option(name: .long, parsing: .unconditional, help: "Stop after this many positions.", transform: Count.positive) var maxPositions: Int = 2000
    @Flag(name: .long, help: "Print JSON.") var json = false

    struct Output: Encodable {
        let positions: Int; let meanExplained: Float; let agreement: Float; let explainedDeciles: [Float]
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let content: String
        if let text {
            content = try readText(text, chars: chars)
        } else if let prompt {
            content = prompt
        } else {
            throw ValidationError("give --prompt TEXT or --text FILE")
        }
        guard window >= 2, window <= loaded.model.config.nCtx else {
            throw ValidationError("--window must be between 2 and the context (\(loaded.model.config.nCtx))")
        }
        let tokens = try loaded.requireTokenizer().encodeForModel(content)
        var points: [ResidualPCAPoint] = []
        var start = 0
        let progress = ProgressBar(total: min(maxPositions, tokens.count), label: "pca")
        while start < tokens.count && points.count < maxPositions {
            let chunk = Array(tokens[start..<min(start + window, tokens.count)])
            points += try loaded.model.residualPCA(tokens: chunk).prefix(maxPositions - points.count)
            start += window
            progress.update(completed: points.count, extra: "positions")
        }
        progress.finish()
        guard !points.isEmpty else { throw ValidationError("no positions to analyse") }
        let explained = points.map(\.explained).sorted()
        let deciles = (1...9).map { explained[min(explained.count - 1, $0 * explained.count / 10)] }
        let mean = explained.reduce(0, +) / Float(explained.count)
        let agreement = Float(points.filter(\.agrees).count) / Float(points.count)
        if json { try printJSON(Output(positions: points.count, meanExplained: mean, agreement: agreement, explainedDeciles: deciles)); return }
        print("\(points.count) predicted positions, \(loaded.model.config.nLayers + 1) residual states each")
        print(String(format: "variance explained by the first direction: mean %.1f%%", mean * 100))
        print("  deciles: " + deciles.map { String(format: "%.0f%%", $0 * 100) }.joined(separator: " "))
        print(String(format: "first direction's top token (through the final norm's weight and W_U) = the model's prediction: %.1f%%", agreement * 100))
    }
}

struct Neurons: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "MLP neurons as key→value memories: value vectors through the unembedding, memory-management neurons, max-activating examples.",
        discussion: """
            Examples:
              loupe neurons --model smollm2-135m --layer 20 --neurons 1,2,3 --text emma.txt --chars 20000
              loupe neurons --model smollm2-135m --layer 20 --top 3 --db austen-l20.sqlite
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "The layer.", transform: Count.nonNegative) var layer: Int
    @Option(name: .long, help: "Comma-separated neurons to show (default: the most negative input/output cosines).") var neurons: String?
    @Option(name: [.customLong("text"), .customLong("corpus")], help: "A UTF-8 text to find max-activating examples in.") var text: String?
    @Option(name: .long, parsing: .unconditional, help: "Only the first N characters of the text.", transform: Count.nonNegative) var chars: Int?
    @Option(name: .long, parsing: .unconditional, help: "Neurons to list, and tokens or examples per neuron.", transform: Count.nonNegative) var top: Int = 5
    @Option(name: .long, help: "Read max-activating examples from an index built by `loupe neuron-index`.") var db: String?
    @Option(name: .long, parsing: .unconditional, help: "With --html and --text: tokens of the text shown with each neuron's activations.", transform: Count.nonNegative) var showTokens: Int = 200
    @Flag(name: .long, help: "Print JSON.") var json = false
    @OptionGroup var figures: FigureOptions

    struct Output: Encodable {
        let layer: Int; let memoryManagement: [[Float]]; let values: [NeuronValue]; let examples: [String: [NeuronExample]]
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let cos = try model.neuronInputOutputCosines(layer: layer)
        let managing = cos.indices.sorted { cos[$0] < cos[$1] }.prefix(top)
        let chosen = try neurons.map { try parseIDs($0, option: "--neurons") } ?? Array(managing)
        let values = try model.neuronValues(layer: layer, neurons: chosen, k: top)
        var examples: [Int: [NeuronExample]] = [:]
        if let db {
            // The index checks that it was built for this model and layer (any corpus and settings).
            let index = try NeuronExampleIndex(openExisting: db, model: model, layer: layer)
            for n in chosen {
                examples[n] = try index.examples(neuron: n).prefix(top).map {
                    NeuronExample(activation: $0.activation, document: $0.document, position: $0.position, context: $0.context, focus: $0.focus)
                }
            }
        }
        var textTokens: [Int] = []
        if let text {
            textTokens = try loaded.requireTokenizer().encodeForModel(try readText(text, chars: chars))
        }
        if db == nil, !textTokens.isEmpty {
            let progress = ProgressReporter("neurons")
            examples = try model.maxActivatingExamples(layer: layer, neurons: chosen, tokens: textTokens, k: top) { done, total in
                progress.update(done, total, extra: "tokens")
            }
            progress.finish()
        }
        if figures.wanted {
            // The start of the text with every chosen neuron's activation on each token.
            let shownTokens = Array(textTokens.prefix(max(0, min(showTokens, model.config.nCtx))))
            let acts = shownTokens.isEmpty ? nil : try model.neuronActivations(layer: layer, tokens: shownTokens)   // [pos, d_mlp]
            let d = model.config.dMLP
            let views = try chosen.map { n -> NeuronActivationsView.Neuron in
                let value = values.first { $0.neuron == n }
                let summary = value.map { v in "promotes " + v.promoted.map { shown(loaded.tokenText($0.id)) }.joined(separator: " ")
                    + " · suppresses " + v.suppressed.map { shown(loaded.tokenText($0.id)) }.joined(separator: " ") } ?? ""
                let text = try acts.map { a in try NeuronActivationsView.Text(tokens: shownTokens.map(loaded.tokenText),
                                                                             activations: shownTokens.indices.map { a.scalars[$0 * d + n] }) }
                let list = try (examples[n] ?? []).map { try NeuronActivationsView.Example(tokens: $0.context.map(loaded.tokenText), focus: $0.focus, activation: $0.activation) }
                return NeuronActivationsView.Neuron(name: "L\(layer)N\(n) (input/output cos \(String(format: "%+.2f", cos[n])))",
                                                    summary: summary, text: text, examples: list)
            }
            try figures.write(heatmap: { nil }, views: { [NeuronActivationsView(title: "Neurons of layer \(layer)", neurons: views)] },
                              title: "Neurons of layer \(layer)", metadata: [("model", modelOptions.model)] + (text.map { [("text", $0)] } ?? []),
                              noHeatmap: "neurons are drawn as text; use --html")
        }
        if json {
            try printJSON(Output(layer: layer, memoryManagement: managing.map { [Float($0), cos[$0]] }, values: values,
                                 examples: Dictionary(uniqueKeysWithValues: examples.map { (String($0.key), $0.value) })))
            return
        }
        print("layer \(layer): most negative input/output cosines (memory-management neurons)")
        print("  " + managing.map { "N\($0) \(String(format: "%+.2f", cos[$0]))" }.joined(separator: ", "))
        for value in values {
            print("\nN\(value.neuron) (cos \(String(format: "%+.2f", cos[value.neuron])))")
            print("  promotes:   " + value.promoted.map { "\(shown(loaded.tokenText($0.id))) \(String(format: "%+.2f", $0.logit))" }.joined(separator: ", "))
            print("  suppresses: " + value.suppressed.map { "\(shown(loaded.tokenText($0.id))) \(String(format: "%+.2f", $0.logit))" }.joined(separator: ", "))
            for e in examples[value.neuron] ?? [] {
                let before = e.context[..<e.focus].map(loaded.tokenText).joined()
                let after = e.context[(e.focus + 1)...].map(loaded.tokenText).joined()
                let line = (before + "[[" + loaded.tokenText(e.context[e.focus]) + "]]" + after).replacingOccurrences(of: "\n", with: "⏎")
                print(String(format: "  %6.2f  ", e.activation) + line)
            }
        }
    }
}
