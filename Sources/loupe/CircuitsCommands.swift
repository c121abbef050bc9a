import ArgumentParser
import Foundation
import LoupeInterp
import LoupeFormats
import LoupeModels
import LoupeStore
import LoupeTensor

struct Circuits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Weight-based circuits: OV copying scores, Q/K/V composition scores, one head's full OV or QK circuit.",
        discussion: "loupe circuits copying | composition | ov --head L.H | qk --head L.H [--query-position P --key-position P]")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "copying, composition, ov, or qk.")
    var what: String

    @Option(name: .long, help: "For ov: the head, LAYER.HEAD.") var head: String?
    @Option(name: .long, help: "For ov and qk: comma-separated source words (each read as \" word\").") var tokens: String?
    @Option(name: .long, help: "For qk: add the positional embedding of this query position (models with W_pos).") var queryPosition: Int?
    @Option(name: .long, help: "For qk: add the positional embedding of this key position.") var keyPosition: Int?
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
        case "ov", "qk":
            let (layer, head) = try parseHead(head, option: "--head")
            let full = what == "ov"
                ? try model.fullOVCircuit(layer: layer, head: head)
                : try model.fullQKCircuit(layer: layer, head: head, queryPosition: queryPosition, keyPosition: keyPosition)
            print(what == "ov"
                  ? "full OV circuit of L\(layer)H\(head): what attending to a token makes likely (row of W_E W_V W_O W_U)"
                  : "full QK circuit of L\(layer)H\(head): the keys each query token scores highest (no norms applied)")
            // Rows of the factored [d_vocab, d_vocab] circuit, one source token at a time.
            let tokenizer = try loaded.requireTokenizer()
            let sources = (tokens ?? " the, cat, Paris, John, Mary, 1, and").split(separator: ",").map { " " + $0.trimmingCharacters(in: .whitespaces) }
            for text in sources {
                guard let t = tokenizer.encode(text).first else { continue }
                let row = try Tensor.embedding(full.a, [t]).matmul(full.b)   // [1, d_vocab]
                let best = topK(row.scalars[...], k: top)
                print("  \(shown(loaded.tokenText(t))) → " + best.map { "\(shown(loaded.tokenText($0.index))) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))
            }
        default:
            throw ValidationError("what must be copying, composition, ov or qk")
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

struct PCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "Residual PCA across layers: per predicted position, the first direction's share of variance and whether it names the prediction.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Text to analyse.") var prompt: String?
    @Option(name: .long, help: "A UTF-8 text file to analyse.") var text: String?
    @Option(name: .long, help: "Only the first N characters of the file.") var chars: Int?
    @Option(name: .long, help: "Tokens per forward pass.") var window: Int = 128
    @Option(name: .long, help: "Stop after this many positions.") var maxPositions: Int = 2000
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
        let began = Date()
        while start < tokens.count && points.count < maxPositions {
            let chunk = Array(tokens[start..<min(start + window, tokens.count)])
            points += try loaded.model.residualPCA(tokens: chunk).prefix(maxPositions - points.count)
            start += window
            if !json {
                let rate = Double(points.count) / max(Date().timeIntervalSince(began), 1e-3)
                FileHandle.standardError.write(Data(String(format: "\r%d/%d positions (%.0f/s)", points.count, min(maxPositions, tokens.count), rate).utf8))
            }
        }
        if !json { FileHandle.standardError.write(Data("\r".utf8)) }
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
        abstract: "MLP neurons as key→value memories: value vectors through the unembedding, memory-management neurons, max-activating examples.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The layer.") var layer: Int
    @Option(name: .long, help: "Comma-separated neurons to show (default: the most negative input/output cosines).") var neurons: String?
    @Option(name: .long, help: "A UTF-8 text to find max-activating examples in.") var text: String?
    @Option(name: .long, help: "Only the first N characters of the text.") var chars: Int?
    @Option(name: .long, help: "Neurons to list, and tokens or examples per neuron.") var top: Int = 5
    @Option(name: .long, help: "Read max-activating examples from an index built by `loupe neuron-index`.") var db: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

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
                    NeuronExample(activation: $0.activation, position: $0.position, context: $0.context, focus: $0.focus)
                }
            }
        } else if let text {
            let tokens = try loaded.requireTokenizer().encodeForModel(try readText(text, chars: chars))
            let began = Date()
            examples = try model.maxActivatingExamples(layer: layer, neurons: chosen, tokens: tokens, k: top) { done, total in
                if !json {
                    let rate = Double(done) / max(Date().timeIntervalSince(began), 1e-3)
                    FileHandle.standardError.write(Data(String(format: "\r%d/%d tokens (%.0f tokens/s)", done, total, rate).utf8))
                }
            }
            if !json { FileHandle.standardError.write(Data("\r".utf8)) }
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

struct NeuronIndex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-index",
        abstract: "Index every neuron's max-activating examples of one layer over a corpus into SQLite (resumable).",
        discussion: "Run it again with the same arguments to resume after an interruption; finished windows are kept. Read the examples with `loupe neurons --db PATH`.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The layer.") var layer: Int
    @Option(name: .long, parsing: .singleValue, help: "A UTF-8 text file (repeat for several; they are joined in order).") var text: [String]
    @Option(name: .long, help: "The SQLite file to build or resume.") var db: String
    @Option(name: .long, help: "Examples kept per neuron.") var k: Int = 10
    @Option(name: .long, help: "Context tokens kept either side.") var context: Int = 8
    @Option(name: .long, help: "Tokens per forward pass.") var window: Int = 128

    func run() throws {
        guard !text.isEmpty else { throw ValidationError("give at least one --text FILE") }
        let loaded = try modelOptions.load()
        let corpus = try text.map { try readText($0, chars: nil) }.joined(separator: "\n\n")
        let tokens = try loaded.requireTokenizer().encodeForModel(corpus)
        let index = try NeuronExampleIndex(path: db, model: loaded.model, layer: layer, corpus: SHA256.hexDigest(Array(corpus.utf8)),
                                           k: k, context: context, window: window)
        let start = try index.nextToken()
        if start > 0 { FileHandle.standardError.write(Data("resuming at token \(start) of \(tokens.count)\n".utf8)) }
        let began = Date()
        let reached = try loaded.model.buildNeuronIndex(index, tokens: tokens, window: window, context: context) { done, total in
            let rate = Double(done - start) / max(Date().timeIntervalSince(began), 1e-3)
            let eta = rate > 0 ? Double(total - done) / rate : 0
            FileHandle.standardError.write(Data(String(format: "\r%d/%d tokens  %.0f tokens/s  %.0f s left ", done, total, rate, eta).utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let seconds = Date().timeIntervalSince(began)
        print(String(format: "indexed %d tokens of layer %d into %@ (%d this run in %.0f s, %.0f tokens/s)",
                     reached, layer, db, reached - start, seconds, Double(reached - start) / max(seconds, 1e-3)))
    }
}
