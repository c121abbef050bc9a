import ArgumentParser
import Foundation
import LoupeModels
import LoupeTraining

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mean next-token loss and perplexity of a model over a text file.",
        discussion: """
            Scores the T−1 next-token predictions of the text's T tokens (a BOS token is added only if the model's \
            tokenizer adds one). A masked-LM encoder is scored on masked tokens instead: consecutive windows \
            corrupted with BERT's rule (15% of positions, seeded by --seed), reporting the masked-token loss and \
            accuracy (JSON: masked_loss, masked_accuracy, masked_tokens).

            Example:
              loupe eval --model smollm2-135m --text pride-and-prejudice.txt --chars 1200
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: [.customLong("text"), .customLong("corpus")], help: "A UTF-8 text file.")
    var text: String

    @Option(name: .long, parsing: .unconditional, help: "Only the first N characters of the file.", transform: Count.nonNegative)
    var chars: Int?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Option(name: .long, help: "Seed of the masked positions (masked-LM encoders).")
    var seed: UInt64 = 0

    struct Output: Encodable { let model: String; let tokens: Int; let predictions: Int; let meanLoss: Double; let perplexity: Double }

    func run() throws {
        let content = try readText(text, chars: chars)
        let loaded = try modelOptions.load(encoders: true)
        if loaded.model.config.bidirectional { return try maskedEval(content, loaded) }
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

    struct MaskedOutput: Encodable {
        let model: String; let tokens: Int; let masked_tokens: Int; let masked_loss: Float; let masked_accuracy: Float
    }

    /// A masked-LM encoder: masked-token loss and accuracy over windows of the text.
    func maskedEval(_ content: String, _ loaded: LoadedModel) throws {
        let model = loaded.model
        guard model.config.hasUnembedding else {
            throw ValidationError("\(modelOptions.model) is an encoder without a masked-LM head (\(model.config.architecture)): it has no predictions to score")
        }
        let tokenizer = try loaded.requireTokenizer()
        guard let mask = tokenizer.maskID else {
            throw ValidationError("the tokenizer of \(modelOptions.model) has no mask token")
        }
        let tokens = tokenizer.encode(content, allowSpecial: false)
        // Random replacements come from the ordinary tokens: those after the last special one, else before the first.
        let specials = Set(tokenizer.specialTokens.values)
        let (lowest, highest) = (specials.min() ?? mask, specials.max() ?? mask)
        let ordinary = highest + 1 < model.config.dVocab ? (highest + 1)..<model.config.dVocab : 0..<lowest
        let context = min(model.config.nCtx, 128)
        let r = try MaskedLanguageModelTask.evaluate(model, stream: tokens, maskID: mask, randomTokens: ordinary, context: context, seed: seed)
        if json {
            try printJSON(MaskedOutput(model: modelOptions.model, tokens: tokens.count, masked_tokens: r.masked, masked_loss: r.loss, masked_accuracy: r.accuracy))
        } else {
            print("model            \(modelOptions.model) (masked-LM encoder)")
            print("text             \(text)\(chars.map { " (first \($0) characters)" } ?? "")")
            print("tokens           \(tokens.count) (\(r.masked) masked)")
            print(String(format: "masked loss      %.4f nats", r.loss))
            print(String(format: "masked accuracy  %.3f", r.accuracy))
        }
    }
}
