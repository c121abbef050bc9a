import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a prompt and show the most likely next tokens.",
        discussion: """
            Examples:
              loupe run --prompt "I do not know what you mean, Mr." --top 5
              loupe run --model smollm2-135m --prompt "The Eiffel Tower is located in the city of" --json
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: [.customLong("top"), .customLong("top-k")], parsing: .unconditional, help: "How many next-token candidates to show.", transform: Count.nonNegative)
    var topK: Int = 10

    @Option(name: .long, help: "Write the [pos, d_vocab] float32 logits to this .npy file.")
    var saveLogits: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Output: Encodable {
        struct Candidate: Encodable { let rank: Int; let id: Int; let token: String; let probability: Float; let logit: Float }
        let model: String
        let tokens: [Int]
        let tokenStrings: [String]
        let topK: [Candidate]
    }

    func run() throws {
        guard topK > 0 else { throw ValidationError("--top-k must be at least 1") }
        let loaded = try modelOptions.load()
        let tokens = try input.tokens(loaded)
        let logits = try loaded.model.run([tokens])
        if let saveLogits {
            try writeNPY(try logits.reshaped([tokens.count, loaded.model.config.dVocab]), to: URL(fileURLWithPath: saveLogits))
        }
        let top = try logits.topPredictions(k: topK)
        let candidates = top.enumerated().map { i, p in
            Output.Candidate(rank: i + 1, id: p.id, token: loaded.tokenText(p.id), probability: p.probability, logit: p.logit)
        }
        if json {
            try printJSON(Output(model: modelOptions.model, tokens: tokens, tokenStrings: tokens.map(loaded.tokenText), topK: candidates))
            return
        }
        print("model   \(modelOptions.model) (\(loaded.summary))")
        print("tokens  \(tokens.count): " + tokens.map { shown(loaded.tokenText($0)) }.joined(separator: " "))
        print("")
        print("rank  token id  probability     logit  token")
        for c in candidates {
            let p = c.probability >= 1e-3 ? String(format: "%.4f", c.probability) : String(format: "%.2e", c.probability)
            print(String(format: "%4d  %8d  ", c.rank, c.id) + p.leftPadded(to: 11) + String(format: "  %8.3f  ", c.logit) + shown(c.token))
        }
        if let saveLogits { print("\nlogits [\(tokens.count), \(loaded.model.config.dVocab)] written to \(saveLogits)") }
    }
}
