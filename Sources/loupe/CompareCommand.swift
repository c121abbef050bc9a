// `loupe compare`: the same text through a causal model and a bidirectional (masked-LM) one — which way
// the heads look, the logit lens at a hidden word, and how the tokens after it move its prediction.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a causal and a bidirectional model on one text: which way heads look, the logit lens at a hidden word, and how later tokens move its prediction.",
        discussion: """
            In a causal model each position hears only from those before it; in a bidirectional (masked-LM) one \
            every position hears every other. One word of --prompt is hidden: the bidirectional model reads it as \
            [MASK] and predicts it at its own position, from both sides; the causal model predicts it at the \
            position before, from the left only. The report has three parts:
              attention   each head's mean share of attention on earlier positions, itself and later ones, and
                          the mean offset it looks at (−1: the previous token, +1: the next); heads that look
                          forward are listed
              logit lens  the hidden word's probability and rank read off every layer of each model
              later       each token after the hidden word replaced by a random one (seeded), one at a time: the
                          change in the log-probability of the hidden word (exactly zero in a causal model)

            Examples:
              loupe compare
              loupe compare --prompt "She was the youngest of the two daughters of a most affectionate father." --word " affectionate"
              loupe compare --causal austen --bidirectional my-mlm --json
            """)

    static let defaultPrompt = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."

    @Option(name: .long, help: "The causal model (a known name, a folder or a .gguf).") var causal: String = ModelRegistry.defaultModel
    @Option(name: .long, help: "The bidirectional model (masked-LM).") var bidirectional: String = "austen-mlm"
    @Option(name: .long, help: "The text, with the word to hide in it.") var prompt: String = Compare.defaultPrompt
    @Option(name: .long, help: "The word to hide: one token of the prompt, as text (with its leading space) or id; its first occurrence is hidden.")
    var word: String?
    @Option(name: .long, help: "Seed of the random replacement tokens.") var seed: UInt64 = 0
    @Option(name: .long, help: "Share of attention on later positions above which a head counts as looking forward.") var forward: Float = 0.5
    @Option(name: .long, parsing: .unconditional, help: "Threads for BLAS and Loupe's kernels.", transform: Count.positive) var threads: Int = 2
    @Flag(name: .long, help: "Print JSON: {causal, bidirectional}, each {model, tokens, position, read_at, heads, lens, later}.") var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if word == nil && prompt != Compare.defaultPrompt { throw ValidationError("give --word: the token of --prompt to hide") }
        guard forward >= 0 && forward <= 1 else { throw ValidationError("--forward must be in [0, 1], found \(forward)") }
    }

    /// One model's side of the comparison.
    struct Side: Encodable {
        let model: String
        let bidirectional: Bool
        /// The tokens it read (the hidden word as [MASK] for the bidirectional model).
        let tokens: [String]
        /// The hidden word's position, and where its prediction is read (the position before, in a causal model).
        let position: Int
        let readAt: Int
        let heads: [Head]
        /// Empty for a model whose head is not a final norm and unembedding (BERT's masked-LM head).
        let lens: [LensRow]
        let logProbability: Float
        let later: [Later]
        let meanAbsoluteLaterChange: Float
    }
    struct Head: Encodable { let layer: Int, head: Int, toEarlier: Float, toSelf: Float, toLater: Float, toNext: Float, toPrevious: Float, meanOffset: Float }
    struct LensRow: Encodable { let layer: String, probability: Float, rank: Int, top: String }
    struct Later: Encodable { let position: Int, token: String, replacement: String, logProbabilityChange: Float }

    func run() throws {
        BLAS.setThreads(threads)
        let c = try ModelLoader.load(path: resolveModel(causal)), b = try ModelLoader.load(path: resolveModel(bidirectional))
        guard !c.model.config.bidirectional else { throw ValidationError("--causal \(causal) attends both ways: give a causal model") }
        guard b.model.config.bidirectional else { throw ValidationError("--bidirectional \(bidirectional) is a causal model: give a masked-LM one") }
        let hidden = word ?? " acknowledged"
        let sides = [try side(c, name: causal, hidden: hidden), try side(b, name: bidirectional, hidden: hidden)]
        if json {
            struct Output: Encodable { let causal: Side, bidirectional: Side }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(Output(causal: sides[0], bidirectional: sides[1])), as: UTF8.self))
            return
        }
        report(sides[0], sides[1])
    }

    func side(_ loaded: LoadedModel, name: String, hidden: String) throws -> Side {
        let model = loaded.model, tokenizer = try loaded.requireTokenizer()
        var ids = tokenizer.encodeForModel(prompt)
        let id: Int
        do { id = try model.singleToken(hidden) } catch let error as ModelError { throw ValidationError("--word for \(name): \(error)") }
        guard let position = ids.firstIndex(of: id) else {
            throw ValidationError("--word \(hidden.quotedForDisplay) (token \(id) of \(name)) is not a token of the prompt as \(name) reads it: \(ids.map { loaded.tokenText($0).quotedForDisplay }.joined(separator: " "))")
        }
        let both = model.config.bidirectional
        if both {
            guard let mask = tokenizer.maskID else { throw ValidationError("the tokenizer of \(name) has no mask token ([MASK] or <mask>)") }
            ids[position] = mask
        } else if position == 0 {
            throw ValidationError("--word is the first token of the prompt: the causal model \(name) has no position before it to predict it from")
        }
        let readAt = both ? position : position - 1
        let heads = try model.attentionAnalysis(tokens: ids).map {
            Head(layer: $0.layer, head: $0.head, toEarlier: $0.toEarlier, toSelf: $0.toSelf, toLater: $0.toLater, toNext: $0.toNext,
                 toPrevious: $0.toPrevious, meanOffset: $0.meanOffset)
        }
        var lens: [LensRow] = []
        if !model.config.postLayerNorm {
            let l = try model.logitLens(tokens: ids)
            lens = try zip(l.labels, l.summary(position: readAt, topK: 1, target: id)).map { label, cell in
                LensRow(layer: label, probability: cell.targetProbability ?? 0, rank: cell.targetRank ?? 0,
                        top: cell.top.first.map { loaded.tokenText($0.id) } ?? "")
            }
        }
        // Replacements: ordinary tokens (no special ones, none that is part of a character or a control), drawn from a list so
        // that two models with one vocabulary (apart from [MASK]) get the same ones.
        let specials = Set(tokenizer.specialTokens.values)
        let ordinary = (0..<min(tokenizer.vocabSize, model.config.dVocab)).filter { id in
            guard !specials.contains(id), let bytes = try? tokenizer.decodeBytes([id]) else { return false }
            guard let text = String(validating: bytes, as: UTF8.self) else { return false }
            return !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
        }
        guard !ordinary.isEmpty else { throw ValidationError("the tokenizer of \(name) has no ordinary tokens to replace with") }
        var rng = SeededGenerator(seed: seed, stream: 0xC0DE)
        let later = ((position + 1)..<ids.count).filter { !specials.contains(ids[$0]) }
        var replacements: [Int: Int] = [:]
        for p in later {
            var r = ordinary[rng.nextInt(ordinary.count)]
            while r == ids[p] { r = ordinary[rng.nextInt(ordinary.count)] }
            replacements[p] = r
        }
        let (logProbability, effects) = try model.tokenReplacementEffects(tokens: ids, readAt: readAt, target: id, positions: later) { replacements[$0]! }
        let shownLater = effects.map {
            Later(position: $0.position, token: loaded.tokenText($0.token), replacement: loaded.tokenText($0.replacement),
                  logProbabilityChange: $0.logProbabilityChange)
        }
        let meanChange = effects.isEmpty ? 0 : effects.map { abs($0.logProbabilityChange) }.reduce(0, +) / Float(effects.count)
        return Side(model: name, bidirectional: both, tokens: ids.map(loaded.tokenText), position: position, readAt: readAt,
                    heads: heads, lens: lens, logProbability: logProbability, later: shownLater, meanAbsoluteLaterChange: meanChange)
    }

    func report(_ c: Side, _ b: Side) {
        let word = c.tokens[c.position]
        print("causal \(c.model) and bidirectional \(b.model) on \(c.tokens.count) tokens; the hidden word \(shown(word)) is token \(c.position)")
        print("(\(c.model) predicts it at position \(c.readAt), \(shown(c.tokens[c.readAt])), from the left; \(b.model) at its [MASK], from both sides)")

        print("\nAttention: each head's mean share on earlier positions, itself and later ones, and the mean offset it looks at")
        print("          " + "causal \(c.model)".padding(toLength: 34, withPad: " ", startingAt: 0) + "bidirectional \(b.model)")
        print("head      earlier   self  later  offset     earlier   self  later  offset")
        let keys = Array(Set((c.heads + b.heads).map { [$0.layer, $0.head] })).sorted { $0.lexicographicallyPrecedes($1) }
        func cells(_ h: Head?) -> String {
            guard let h else { return String(repeating: " ", count: 11) + "—" + String(repeating: " ", count: 20) }
            return String(format: "%7.2f  %5.2f  %5.2f  %+6.2f", h.toEarlier, h.toSelf, h.toLater, h.meanOffset)
        }
        for k in keys {
            let ch = c.heads.first { $0.layer == k[0] && $0.head == k[1] }, bh = b.heads.first { $0.layer == k[0] && $0.head == k[1] }
            print("L\(k[0])H\(k[1])".padding(toLength: 8, withPad: " ", startingAt: 0) + cells(ch) + "    " + cells(bh))
        }
        let lookers = b.heads.filter { $0.toLater >= forward }.sorted { $0.toLater > $1.toLater }
        if lookers.isEmpty {
            let most = b.heads.sorted { $0.toLater > $1.toLater }.prefix(3)
            print("No head of \(b.model) puts \(forward) or more on later positions; the most forward: "
                  + most.map { String(format: "L%dH%d %.2f", $0.layer, $0.head, $0.toLater) }.joined(separator: ", "))
        } else {
            print("Heads of \(b.model) that look forward (later ≥ \(forward)): "
                  + lookers.map { String(format: "L%dH%d %.2f (next token %.2f)", $0.layer, $0.head, $0.toLater, $0.toNext) }.joined(separator: ", "))
        }

        if !c.lens.isEmpty || !b.lens.isEmpty {
            print("\nLogit lens: the probability and rank of \(shown(word)) read off each layer, and each layer's top token")
            print("layer        " + "\(c.model) at \(c.readAt)".padding(toLength: 34, withPad: " ", startingAt: 0) + "\(b.model) at \(b.readAt)")
            for i in 0..<max(c.lens.count, b.lens.count) {
                func cell(_ rows: [LensRow]) -> String {
                    guard i < rows.count else { return "—".padding(toLength: 34, withPad: " ", startingAt: 0) }
                    let r = rows[i]
                    return String(format: "%7.4f  %5d  ", r.probability, r.rank) + shown(r.top).padding(toLength: 18, withPad: " ", startingAt: 0)
                }
                let label = i < c.lens.count ? c.lens[i].layer : b.lens[i].layer
                print(label.padding(toLength: 12, withPad: " ", startingAt: 0) + " " + cell(c.lens) + cell(b.lens))
            }
        }

        print("\nLater tokens: each token after \(shown(word)) replaced by a random one (seed \(seed)); the change in log p(\(shown(word)))")
        /// Position, token and replacement, then the changes.
        func row(_ x: Later, _ changes: [Float]) -> String {
            String(format: "%3d  ", x.position) + shown(x.token).padding(toLength: 17, withPad: " ", startingAt: 0)
                + shown(x.replacement).padding(toLength: 19, withPad: " ", startingAt: 0)
                + changes.map { String(format: "%+9.4f", $0) }.joined(separator: "   ")
        }
        let sameTokens = c.later.map(\.position) == b.later.map(\.position) && c.later.map(\.token) == b.later.map(\.token)
        if sameTokens {
            print("pos  token            replacement        " + c.model.padding(toLength: 12, withPad: " ", startingAt: 0) + b.model)
            for (x, y) in zip(c.later, b.later) { print(row(x, [x.logProbabilityChange, y.logProbabilityChange])) }
        } else {
            for s in [c, b] {
                print("\(s.model):")
                for x in s.later { print(row(x, [x.logProbabilityChange])) }
            }
        }
        print(String(format: "mean |change|: %@ %.4f, %@ %.4f (log p(%@) unchanged: %.3f and %.3f)", c.model, c.meanAbsoluteLaterChange,
                     b.model, b.meanAbsoluteLaterChange, shown(word), c.logProbability, b.logProbability))
    }
}
