// Next-token prediction on a tokenized corpus: random windows from the training part of each text for
// training, the held-out tail of each text for evaluation.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// A corpus split into training and held-out token streams.
public struct LanguageModelTask: BatchSource {
    public let train: [Int]
    public let heldOut: [Int]
    public let context: Int
    public let batchSize: Int
    /// The share of windows in which a passage of the corpus appears twice (see `batch`).
    public var repeatFraction: Double = 0

    /// Tokenizes `texts` (each ended by `eos` when given) and holds out the last `heldOutFraction` of each.
    /// - Throws: `TrainingError.invalid` when the training part is shorter than one window.
    public init(texts: [String], tokenizer: BPETokenizer, eos: Int?, context: Int, batchSize: Int,
                heldOutFraction: Double = 0.1) throws {
        guard context > 1, batchSize > 0 else { throw TrainingError.invalid("context must be > 1 and batch size > 0") }
        var train: [Int] = [], held: [Int] = []
        for text in texts {
            var ids = tokenizer.encode(text)
            if let eos { ids.append(eos) }
            let cut = Int(Double(ids.count) * (1 - heldOutFraction))
            train += ids[..<cut]
            held += ids[cut...]
        }
        guard train.count > context + 1 else {
            throw TrainingError.invalid("the corpus has \(train.count) training tokens, fewer than one window of \(context + 1)")
        }
        self.train = train
        self.heldOut = held
        self.context = context
        self.batchSize = batchSize
    }

    /// Random windows of the training stream. A `repeatFraction` of them are built so that a passage occurs
    /// twice: some text, a passage A (16–80 tokens), some other text, A again, then what follows A in the
    /// corpus — as names and phrases recur in real text, but often enough that a small model trained
    /// briefly learns to look back for them (an induction circuit).
    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        var tokens: [[Int]] = [], targets: [Int] = []
        let n = train.count
        for _ in 0..<batchSize {
            var window: [Int]
            if repeatFraction > 0 && Double(rng.nextUnit()) < repeatFraction {
                let length = 16 + rng.nextInt(min(65, context / 3))
                let a = rng.nextInt(n - length - context - 1)
                let passage = Array(train[a..<(a + length)])
                let x = rng.nextInt(n - context), before = rng.nextInt(context / 4 + 1), between = rng.nextInt(context / 4 + 1)
                window = Array(train[x..<(x + before)]) + passage + Array(train[(x + before)..<(x + before + between)]) + passage
                let rest = context + 1 - window.count
                if rest > 0 { window += train[(a + length)..<(a + length + rest)] } else { window = Array(window.prefix(context + 1)) }
            } else {
                let start = rng.nextInt(n - context - 1)
                window = Array(train[start...(start + context)])
            }
            tokens.append(Array(window.dropLast()))
            targets += window.dropFirst()
        }
        return Batch(tokens: tokens, targets: targets)
    }

    /// Mean next-token loss (nats) on the held-out stream, in consecutive windows of the context length.
    public func heldOutLoss(_ model: HookedTransformer, maxTokens: Int = 200_000) throws -> Float {
        try Self.meanLoss(model, stream: Array(heldOut.prefix(maxTokens)), context: context)
    }

    /// Mean next-token loss of a token stream in consecutive windows.
    public static func meanLoss(_ model: HookedTransformer, stream: [Int], context: Int) throws -> Float {
        var total: Double = 0, count = 0
        var start = 0
        let v = model.config.dVocab
        while start + 1 < stream.count {
            let end = min(start + context + 1, stream.count)
            let window = Array(stream[start..<(end - 1)])
            let logProbs = try model.run(window).logSoftmax()
            for (i, target) in stream[(start + 1)..<end].enumerated() {
                total -= Double(logProbs.scalars[i * v + target])
                count += 1
            }
            start = end - 1
        }
        return count == 0 ? .nan : Float(total / Double(count))
    }
}
