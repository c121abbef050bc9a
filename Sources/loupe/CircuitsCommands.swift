import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor

struct Circuits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Weight-based circuits: OV copying scores, Q/K/V composition scores, one head's full OV circuit.",
        discussion: "loupe circuits copying | composition | ov --head L.H")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "copying, composition, or ov.")
    var what: String

    @Option(name: .long, help: "For ov: the head, LAYER.HEAD.") var head: String?
    @Option(name: .long, help: "For ov: comma-separated source words (each read as \" word\").") var tokens: String?
    @Option(name: .long, help: "For ov: tokens to show per source.") var top: Int = 5
    @Option(name: .long, help: "For composition: pairs to list per mode.") var pairs: Int = 10
    @Flag(name: .long, help: "Print JSON (composition: {\"q\": [L][H][L][H], \"k\": …, \"v\": …}).") var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let (nL, h) = (model.config.nLayers, model.config.nHeads)
        switch what {
        case "copying":
            let scores = try model.copyingScores()
            if json { try printJSON(AnyNested(scores)); return }
            print("OV copying scores (Σ Re λ / Σ |λ| of W_E W_V W_O W_U; 1 = copies what it attends to)")
            printGrid(rowLabels: (0..<nL).map { "L\($0)" }, columnLabels: (0..<h).map { "H\($0)" }, values: { scores.scalars[$0 * h + $1] }, format: "%.2f")
        case "composition":
            var all: [String: AnyNested] = [:]
            var tensors: [(CompositionMode, Tensor)] = []
            for mode in CompositionMode.allCases {
                let t = try model.compositionScores(mode)
                all[mode.rawValue] = AnyNested(t)
                tensors.append((mode, t))
            }
            if json { try printJSON(all); return }
            for (mode, t) in tensors {
                let order = t.scalars.indices.sorted { t.scalars[$0] > t.scalars[$1] }.prefix(pairs)
                print("\n\(mode.rawValue.uppercased())-composition, strongest pairs (earlier head → later head):")
                for i in order {
                    let (a, b) = (i / (nL * h), i % (nL * h))
                    print("  L\(a / h)H\(a % h) → L\(b / h)H\(b % h)  " + String(format: "%.3f", t.scalars[i]))
                }
            }
        case "ov":
            guard let head, case let parts = head.split(separator: ".").compactMap({ Int($0) }), parts.count == 2 else {
                throw ValidationError("ov needs --head LAYER.HEAD")
            }
            let full = try model.fullOVCircuit(layer: parts[0], head: parts[1])   // [d_vocab, d_vocab], factored
            let tokenizer = try loaded.requireTokenizer()
            let sources = (tokens ?? " the, cat, Paris, John, Mary, 1, and").split(separator: ",").map { " " + $0.trimmingCharacters(in: .whitespaces) }
            print("full OV circuit of L\(parts[0])H\(parts[1]): what attending to a token makes likely (row of W_E W_V W_O W_U)")
            for text in sources {
                guard let t = tokenizer.encode(text).first else { continue }
                let row = try Tensor.embedding(full.a, [t]).matmul(full.b)   // [1, d_vocab]
                let best = topK(row.scalars[...], k: top)
                print("  \(shown(loaded.tokenText(t))) → " + best.map { "\(shown(loaded.tokenText($0.index))) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))
            }
        default:
            throw ValidationError("what must be copying, composition or ov")
        }
    }
}

struct Process: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the model with TransformerLens's weight processing, in its layout, as safetensors (loadable by Loupe and from Python).")

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
