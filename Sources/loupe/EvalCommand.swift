import ArgumentParser
import Foundation
import LoupeModels

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mean next-token loss and perplexity of a model over a text file.",
        discussion: "Scores the T−1 next-token predictions of the text's T tokens (a BOS token is added only if the model's tokenizer adds one).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "A UTF-8 text file.")
    var text: String

    @Option(name: .long, parsing: .unconditional, help: "Only the first N characters of the file.", transform: Count.nonNegative)
    var chars: Int?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    struct Output: Encodable { let model: String; let tokens: Int; let predictions: Int; let meanLoss: Double; let perplexity: Double }

    func run() throws {
        let content = try readText(text, chars: chars)
        let loaded = try modelOptions.load()
        let tokens = try loaded.requireTokenizer().encodeForModel(content)
        let progress = ProgressReporter("eval")
        let result = try loaded.model.perplexity(of: tokens) { done, total in progress.update(done, total, extra: "tokens") }
        progress.finish()
        if json {
            try printJSON(Output(model: modelOptions.model, tokens: result.tokens, predictions: result.predictions,
                                 meanLoss: result.meanLoss, perplexity: result.perplexity))
        } else {
            print("model       \(modelOptions.model)")
            print("text        \(text)\(chars.map { " (first \($0) characters)" } ?? "")")
            print("tokens      \(result.tokens) (\(result.predictions) predictions)")
            print(String(format: "mean loss   %.4f nats", result.meanLoss))
            print(String(format: "perplexity  %.2f", result.perplexity))
        }
    }
}
