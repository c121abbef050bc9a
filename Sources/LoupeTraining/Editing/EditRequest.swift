// A ROME request in words — "The Eiffel Tower is located in the city of", subject "Eiffel Tower", target
// " Rome" — turned into tokens: the generated contexts, where the subject's last token falls in each, the
// target token; and the paper's evaluation of an edit (efficacy, paraphrases, neighbourhood, fluency).

import Foundation
import LoupeModels
import LoupeTensor

/// A request in tokens, with what it was made from.
public struct PreparedEdit: Sendable {
    public let tokens: ROMETokenRequest
    /// The texts before the prompt, one per context after the bare prompt's ("" for the bare prompt).
    public let contexts: [String]
    /// The subject's last token, as text.
    public let subjectToken: String
    /// The target as the token it is (ROME puts a space before a target that has none).
    public let targetText: String
}

extension ROME {
    /// Tokens for a request: the prompt must contain `subject`; `target` must be one token once a leading
    /// space is added where it has none (as ROME does: " Rome" continues "… city of").
    /// - Throws: `EditError.subjectNotInPrompt`, `.targetNotOneToken`, `ModelError` for a model without a
    ///   tokenizer or a prompt longer than the context.
    public static func prepare(model: HookedTransformer, prompt: String, subject: String, target: String,
                               settings: ROMESettings) throws -> PreparedEdit {
        guard !subject.isEmpty, let range = prompt.range(of: subject) else {
            throw EditError.subjectNotInPrompt(subject: subject, prompt: prompt)
        }
        guard !target.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw EditError.targetNotOneToken("the target is empty; give the word the model should say, e.g. --target Rome")
        }
        let spaced = target.first?.isWhitespace == true ? target : " " + target
        let tokenizer = try model.requireTokenizer()
        let targetIDs = tokenizer.encode(spaced, allowSpecial: false)
        guard targetIDs.count == 1 else {
            let shown = try model.toStrings(targetIDs).map(\.quotedForDisplay).joined(separator: " ")
            throw EditError.targetNotOneToken("the target \(spaced.quotedForDisplay) is \(targetIDs.count) tokens (\(shown)); "
                                              + "ROME here writes one next token: give a target that is one token")
        }
        let subjectEnd = String(prompt[..<range.upperBound])
        let contexts = [""] + (try contextPrefixes(model: model, settings: settings))
        var rows: [[Int]] = [], positions: [Int] = []
        for context in contexts {
            let row = try model.toTokens(context + prompt)
            let position = try model.toTokens(context + subjectEnd).count - 1
            guard row.count <= model.config.nCtx else {
                throw ModelError.sequenceTooLong(length: row.count, nCtx: model.config.nCtx)
            }
            guard position < row.count else {
                throw EditError.invalid("the subject's last token could not be placed in \((context + prompt).quotedForDisplay)")
            }
            rows.append(row)
            positions.append(position)
        }
        let klPrompt = try model.toTokens(subject + " is a")
        let klPosition = try model.toTokens(subject).count - 1
        let request = ROMETokenRequest(contexts: rows, subjectPositions: positions, target: targetIDs[0],
                                       klPrompt: klPrompt, klSubjectPosition: klPosition)
        let subjectToken = try model.toStrings([rows[0][positions[0]]])[0]
        return PreparedEdit(tokens: request, contexts: contexts, subjectToken: subjectToken, targetText: spaced)
    }

    /// ROME's contexts: short texts the model writes from its start-of-text token by top-5 sampling
    /// (seeded), each followed by ". " before the prompt; line breaks become spaces.
    public static func contextPrefixes(model: HookedTransformer, settings s: ROMESettings) throws -> [String] {
        let tokenizer = try model.requireTokenizer()
        guard let start = tokenizer.endOfText ?? tokenizer.bosID ?? tokenizer.eosID ?? model.config.eosTokenID else {
            throw EditError.unsupportedModel("the tokenizer has no start-of-text, BOS or EOS token to start the contexts from")
        }
        var out: [String] = []
        var n: UInt64 = 0
        for length in s.contexts {
            for _ in 0..<length.count {
                n += 1
                let sampling = SamplingOptions(temperature: 1, topK: 5, seed: s.seed &+ n)
                let ids = try model.generate(prompt: [start], maxTokens: length.tokens, sampling: sampling)
                let text = try tokenizer.decode(ids.filter { $0 != start })
                    .replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
                out.append(text + ". ")
            }
        }
        return out
    }
}

// MARK: - Evaluation

/// One prompt's next-token probabilities of the target and the original answer, before and after.
public struct EditProbe: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case rewrite, paraphrase, neighbourhood }
    public var kind: Kind
    public var prompt: String
    public var targetBefore: Float
    public var targetAfter: Float
    public var originalBefore: Float
    public var originalAfter: Float
    /// Rewrite and paraphrase: the target now beats the original; neighbourhood: the original still beats
    /// the target (the paper's efficacy, generalization and specificity scores).
    public var success: Bool {
        kind == .neighbourhood ? originalAfter > targetAfter : targetAfter > originalAfter
    }
}

/// The paper's measures of an edit.
public struct EditEvaluation: Sendable, Codable {
    public var probes: [EditProbe]
    /// Fraction of successes per kind (nil where there were no prompts of that kind).
    public var efficacy: Float?
    public var paraphrase: Float?
    public var neighbourhood: Float?
    /// Weighted bigram and trigram entropy of sampled continuations (ROME's `n_gram_entropy`), before and after:
    /// an edit that breaks the model makes it repeat itself and this falls.
    public var fluencyBefore: Float?
    public var fluencyAfter: Float?
    public var generationsBefore: [String]
    public var generationsAfter: [String]
}

extension ROME {
    /// Measures an edit on the prompt, paraphrases and neighbourhood prompts; with `generationTokens` > 0 also
    /// samples continuations of `generationPrompts` (top-5, seeded, the same seeds before and after).
    public static func evaluate(before: HookedTransformer, after: HookedTransformer, prompt: String,
                                paraphrases: [String], neighbours: [String], target: Int, original: Int,
                                generationPrompts: [String], generationTokens: Int, seed: UInt64 = 0) throws -> EditEvaluation {
        var probes: [EditProbe] = []
        let groups: [(EditProbe.Kind, [String])] = [(.rewrite, [prompt]), (.paraphrase, paraphrases), (.neighbourhood, neighbours)]
        for (kind, prompts) in groups {
            for p in prompts {
                let (tb, ob) = try nextTokenProbabilities(before, p, target, original)
                let (ta, oa) = try nextTokenProbabilities(after, p, target, original)
                probes.append(EditProbe(kind: kind, prompt: p, targetBefore: tb, targetAfter: ta, originalBefore: ob, originalAfter: oa))
            }
        }
        func rate(_ k: EditProbe.Kind) -> Float? {
            let ps = probes.filter { $0.kind == k }
            return ps.isEmpty ? nil : Float(ps.filter(\.success).count) / Float(ps.count)
        }
        var gBefore: [String] = [], gAfter: [String] = []
        if generationTokens > 0 {
            for (i, p) in generationPrompts.enumerated() {
                let sampling = SamplingOptions(temperature: 1, topK: 5, seed: seed &+ UInt64(i))
                for (model, out) in [(before, 0), (after, 1)] {
                    let tokens = try model.toTokens(p)
                    let room = max(0, min(generationTokens, model.config.nCtx + 1 - tokens.count))
                    let text = p + (try model.requireTokenizer().decode(try model.generate(prompt: tokens, maxTokens: room, sampling: sampling)))
                    if out == 0 { gBefore.append(text) } else { gAfter.append(text) }
                }
            }
        }
        func fluency(_ texts: [String]) -> Float? {
            texts.isEmpty ? nil : texts.map(ngramEntropy).reduce(0, +) / Float(texts.count)
        }
        return EditEvaluation(probes: probes, efficacy: rate(.rewrite), paraphrase: rate(.paraphrase),
                              neighbourhood: rate(.neighbourhood), fluencyBefore: fluency(gBefore),
                              fluencyAfter: fluency(gAfter), generationsBefore: gBefore, generationsAfter: gAfter)
    }

    static func nextTokenProbabilities(_ model: HookedTransformer, _ prompt: String, _ a: Int, _ b: Int) throws -> (Float, Float) {
        let tokens = try model.toTokens(prompt)
        var options = ForwardOptions()
        options.lastPositionOnly = true
        let logits = try model.run([tokens], options: options)
        let v = model.config.dVocab
        let last = Array(logits.scalars.suffix(v))
        let maxLogit = last.max() ?? 0
        let z = last.reduce(Double(0)) { $0 + exp(Double($1 - maxLogit)) }
        func p(_ t: Int) -> Float { Float(exp(Double(last[t] - maxLogit)) / z) }
        return (p(a), p(b))
    }

    /// ROME's `compute_n_gram_entropy`: the mean of 2/3 × the bigram entropy and 4/3 × the trigram entropy
    /// (bits) of the text's words and punctuation marks (nltk's `word_tokenize`, approximated: runs of letters,
    /// digits and apostrophes, and each other non-space character). 0 for a text of fewer than three words.
    public static func ngramEntropy(_ text: String) -> Float {
        var words: [String] = [], current = ""
        for ch in text {
            if ch.isLetter || ch.isNumber || ch == "'" { current.append(ch); continue }
            if !current.isEmpty { words.append(current); current = "" }
            if !ch.isWhitespace { words.append(String(ch)) }
        }
        if !current.isEmpty { words.append(current) }
        func entropy(_ n: Int) -> Double {
            guard words.count >= n else { return 0 }
            var counts: [[String]: Int] = [:]
            for i in 0...(words.count - n) { counts[Array(words[i..<(i + n)]), default: 0] += 1 }
            let total = Double(words.count - n + 1)
            return counts.values.reduce(0) { h, c in let p = Double(c) / total; return h - p * log2(p) }
        }
        return Float((entropy(2) * 2 / 3 + entropy(3) * 4 / 3) / 2)
    }
}
