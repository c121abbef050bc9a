// Language-model loss and perplexity over a text.

import LoupeTensor
import Foundation

/// Next-token loss over a token sequence.
public struct Perplexity: Sendable, Equatable, Codable {
    /// Tokens in the text.
    public let tokens: Int
    /// Predictions scored: tokens − 1 (each token after the first, predicted from those before it).
    public let predictions: Int
    /// Mean negative log-likelihood in nats.
    public let meanLoss: Double
    /// `exp(meanLoss)`.
    public var perplexity: Double { Foundation.exp(meanLoss) }
}

extension HookedTransformer {
    /// Mean next-token loss of `tokens`. A sequence longer than the context is scored in consecutive
    /// windows of `n_ctx` tokens, each window's first token predicted from nothing earlier (not scored).
    /// `progress` hears (tokens done, tokens) after each window.
    public func perplexity(of tokens: [Int], progress: ((Int, Int) -> Void)? = nil) throws -> Perplexity {
        guard tokens.count >= 2 else {
            throw ModelError.unsupported("scoring needs at least 2 tokens, found \(tokens.count)")
        }
        var total = 0.0, count = 0
        var start = 0
        while start < tokens.count - 1 {
            let window = Array(tokens[start..<min(start + config.nCtx, tokens.count)])
            if window.count < 2 { break }
            let logProbs = try run([window]).logSoftmax()   // [1, pos, d_vocab]
            let v = config.dVocab
            for t in 0..<(window.count - 1) {
                total -= Double(logProbs.scalars[t * v + window[t + 1]])
                count += 1
            }
            start += window.count
            progress?(start, tokens.count)
        }
        return Perplexity(tokens: tokens.count, predictions: count, meanLoss: total / Double(count))
    }
}

/// Chat prompts for instruct models.
public enum ChatTemplate {
    /// Renders one user message as the model's chat template would, followed by the assistant's turn.
    /// Supports ChatML templates (`<|im_start|>role\n…<|im_end|>`, as SmolLM2 and Qwen use), including a
    /// default system message the template inserts; other templates are an error, not a guess.
    public static func render(template: String?, user: String) throws -> String {
        guard let template, template.contains("<|im_start|>") else {
            throw ModelError.unsupported("this model's chat template is not ChatML; Loupe renders ChatML templates only")
        }
        var out = ""
        // A template that inserts a default system turn spells it out literally.
        if let range = template.range(of: "<|im_start|>system\n") {
            let rest = template[range.upperBound...]
            if let end = rest.range(of: "<|im_end|>") {
                out += "<|im_start|>system\n" + rest[..<end.lowerBound] + "<|im_end|>\n"
            }
        }
        out += "<|im_start|>user\n\(user)<|im_end|>\n<|im_start|>assistant\n"
        return out
    }
}
