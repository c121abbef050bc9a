// `loupe fill`: a masked-LM encoder's predictions for each [MASK] of a prompt.

import ArgumentParser
import Foundation
import LoupeModels
import LoupeTensor

struct Fill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A masked-LM encoder's most likely tokens for each [MASK] in a prompt.",
        discussion: """
            The prompt is tokenized as the model expects ([CLS] … [SEP] for BERT), the masked-LM head read at \
            every mask position, and the top tokens printed with their probabilities. The model must be \
            bidirectional (austen-mlm, a BertForMaskedLM folder); a causal model has no mask token to fill.

            Examples:
              loupe fill --model austen-mlm --prompt "It is a truth universally acknowledged, that a single man in possession of a good [MASK], must be in want of a wife."
              loupe fill --model path/to/bert --prompt "Paris is the [MASK] of France."
              loupe fill --model path/to/bert --prompt "It is a truth universally [MASK]." --top 10 --json
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Text with one or more mask tokens ([MASK]).") var prompt: String
    @Option(name: .long, parsing: .unconditional, help: "How many tokens to show per mask.", transform: Count.positive) var top: Int = 5
    @Flag(name: .long, help: "Print JSON: {model, tokens, masks: [{position, predictions: [{token, id, probability}]}]}.") var json = false

    struct Prediction: Encodable { let token: String; let id: Int; let probability: Float }
    struct Mask: Encodable { let position: Int; let predictions: [Prediction] }
    struct Output: Encodable { let model: String; let tokens: [String]; let masks: [Mask] }

    func run() throws {
        let loaded = try modelOptions.load(encoders: true)
        let model = loaded.model
        let tokenizer = try loaded.requireTokenizer()
        guard model.config.bidirectional else {
            throw ValidationError("\(modelOptions.model) is a causal model (\(model.config.architecture)): it predicts the next token, not a [MASK]; use loupe run")
        }
        guard let maskID = tokenizer.maskID else { throw ValidationError("the tokenizer of \(modelOptions.model) has no mask token ([MASK] or <mask>)") }
        let ids = tokenizer.encodeForModel(prompt)
        let positions = ids.indices.filter { ids[$0] == maskID }
        guard !positions.isEmpty else { throw ValidationError("--prompt has no [MASK] to fill") }
        let logits = try model.run([ids])
        let masks = try positions.map { p in
            // An id the model has and the tokenizer does not (a model vocabulary padded past the tokenizer's) shows as <id>.
            Mask(position: p, predictions: try logits.topPredictions(k: top, pos: p).map {
                Prediction(token: (try? tokenizer.tokenString($0.id))?.trimmingCharacters(in: .whitespaces) ?? "<\($0.id)>",
                           id: $0.id, probability: $0.probability)
            })
        }
        let tokens = try ids.map { try tokenizer.tokenString($0).trimmingCharacters(in: .whitespaces) }
        if json {
            try printJSON(Output(model: modelOptions.model, tokens: tokens, masks: masks))
            return
        }
        for m in masks {
            let shownPredictions = m.predictions.map { String(format: "%@ %.3f", shown($0.token), $0.probability) }
            print("[MASK] at \(m.position): " + shownPredictions.joined(separator: ", "))
        }
    }
}
