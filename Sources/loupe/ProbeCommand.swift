// `loupe probe`: where in the model a labelled property becomes linearly readable.

import ArgumentParser
import Foundation
import LoupeModels
import LoupeRender
import LoupeTraining

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Linear probes per layer: logistic or ridge regression on one hook point, scored on held-out examples.",
        discussion: """
            --data is JSONL, one example a line: {"text": "...", "label": "yes", "position": -1} (position: \
            the token to read, negative from the end). Each example runs once; the activation at --hook and \
            that position is cached for every layer; a probe per layer is fit on a seeded split and scored on \
            the held-out part (accuracy for logistic, R² for linear). Hooks: resid_pre, resid_mid, \
            resid_post, attn_out, mlp_out, mlp_post, or a full name with {l} for the layer \
            (blocks.{l}.ln2.hook_normalized).

            Example:
              loupe probe --model smollm2-135m --data data/probes/austen-dialogue.jsonl --hook resid_post --layers all --kind logistic
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "JSONL dataset: text, label, position per line.")
    var data: String
    @Option(name: .long, help: "Hook point (see above).")
    var hook: String = "resid_post"
    @Option(name: .long, help: "Layers: all, or a comma-separated list (0,4,8).")
    var layers: String = "all"
    @Option(name: .long, help: "logistic (classes, accuracy) or linear (numbers, R²).")
    var kind: ProbeKind = .logistic
    @Option(name: .long, help: "Fraction of examples held out.")
    var heldOut: Double = 0.25
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Logistic: weight decay (L2). Linear: the ridge penalty is --ridge.")
    var weightDecay: Float = 0.01
    @Option(name: .long, help: "Linear: ridge penalty λ on standardized features.")
    var ridge: Float = 0.1
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    /// The hook name template for a short name.
    static func template(_ hook: String) throws -> String {
        switch hook {
        case "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out": return "blocks.{l}.hook_\(hook)"
        case "mlp_post", "mlp_pre": return "blocks.{l}.mlp.hook_\(hook.dropFirst(4))"
        default:
            guard hook.contains("{l}") else {
                throw ValidationError("--hook: expected resid_pre, resid_mid, resid_post, attn_out, mlp_out, mlp_post, mlp_pre or a name with {l}, found '\(hook)'")
            }
            return hook
        }
    }

    func run() throws {
        let probeKind = kind
        guard heldOut > 0 && heldOut < 1 else { throw ValidationError("--held-out: expected a fraction in (0, 1), found \(heldOut)") }
        let loaded = try modelOptions.load()
        let nL = loaded.model.config.nLayers
        let layerList: [Int]
        if layers == "all" {
            layerList = Array(0..<nL)
        } else {
            layerList = try layers.split(separator: ",").map { part in
                guard let l = Int(part.trimmingCharacters(in: .whitespaces)), l >= 0, l < nL else {
                    throw ValidationError("--layers: expected all or layers in 0..<\(nL) separated by commas, found '\(part)'")
                }
                return l
            }
        }
        let template = try Self.template(hook)
        let names = try layerList.map { try HookName(parsing: template.replacingOccurrences(of: "{l}", with: String($0))) }
        let examples = try loadProbeDataset(path: data)
        let tokenizer = try loaded.requireTokenizer()
        let tokens = examples.map { tokenizer.encode($0.text) }
        let bar = ProgressBar(total: examples.count, label: "probe: caching")
        let start = Date()
        let acts = try loaded.model.probeActivations(tokens: tokens, positions: examples.map(\.position), layers: layerList,
                                                     hook: { l in names[layerList.firstIndex(of: l) ?? 0] }) { done, _ in bar.update(completed: done) }
        bar.finish()
        var settings = ProbeSettings(kind: probeKind, heldOutFraction: heldOut, seed: seed)
        settings.weightDecay = weightDecay
        settings.ridge = ridge
        let report = try fitProbes(activations: acts, layers: layerList, hook: template, examples: examples, settings: settings)
        if json { try printJSON(report); return }
        let metric = probeKind == .logistic ? "accuracy" : "R²"
        print("\(probeKind.rawValue) probe on \(template), \(report.trainCount) training and \(report.heldOutCount) held-out examples"
              + (probeKind == .logistic ? ", classes \(report.classes.joined(separator: ", ")); majority-class baseline \(String(format: "%.3f", report.baseline))" : "")
              + String(format: " (%.0f s)", Date().timeIntervalSince(start)))
        print("| layer | held-out \(metric) | train \(metric) |\n|---|---|---|")
        for (i, l) in report.layers.enumerated() {
            print("| \(l) | " + String(format: "%.3f | %.3f |", report.heldOut[i], report.train[i]))
        }
        if let best = report.heldOut.indices.max(by: { report.heldOut[$0] < report.heldOut[$1] }) {
            print("best held-out \(metric): \(String(format: "%.3f", report.heldOut[best])) at layer \(report.layers[best])")
        }
    }
}
