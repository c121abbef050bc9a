// Masked-token prediction (BERT's pre-training objective) on a token stream: in random windows, each position
// is chosen with probability `maskRate`; a chosen token is replaced by the mask token 80% of the time, by a
// random token 10%, left as it is 10%, and the loss is the cross-entropy of the original at chosen positions.

import Foundation
import LoupeModels
import LoupeTensor

/// A masked-LM task over training and held-out token streams.
public struct MaskedLanguageModelTask: BatchSource {
    public let train: [Int]
    public let heldOut: [Int]
    public let context: Int
    public let batchSize: Int
    public let maskID: Int
    /// Random replacements are drawn from these ids (the ordinary vocabulary, no special tokens).
    public let randomTokens: Range<Int>
    public var maskRate: Double = 0.15

    /// - Throws: `TrainingError.invalid` for a training stream shorter than one window, an empty random range,
    ///   or a mask rate outside (0, 1].
    public init(train: [Int], heldOut: [Int], maskID: Int, randomTokens: Range<Int>, context: Int, batchSize: Int) throws {
        guard context > 1, batchSize > 0 else { throw TrainingError.invalid("context must be > 1 and batch size > 0") }
        guard train.count >= context else {
            throw TrainingError.invalid("the corpus has \(train.count) training tokens, fewer than one window of \(context)")
        }
        guard !randomTokens.isEmpty, !randomTokens.contains(maskID) else {
            throw TrainingError.invalid("random replacements need a non-empty range of ordinary tokens without the mask token")
        }
        self.train = train; self.heldOut = heldOut; self.maskID = maskID; self.randomTokens = randomTokens
        self.context = context; self.batchSize = batchSize
    }

    /// BERT's corruption of one window: the tokens the model reads and the target at each position (`-1`: not
    /// chosen, no loss). At least one position is chosen.
    public func corrupt(_ window: [Int], rng: inout SeededGenerator) -> (tokens: [Int], targets: [Int]) {
        Self.corrupt(window, maskID: maskID, randomTokens: randomTokens, maskRate: maskRate, rng: &rng)
    }

    static func corrupt(_ window: [Int], maskID: Int, randomTokens: Range<Int>, maskRate: Double,
                        rng: inout SeededGenerator) -> (tokens: [Int], targets: [Int]) {
        var tokens = window, targets = [Int](repeating: -1, count: window.count)
        var chosen = window.indices.filter { _ in Double(rng.nextUnit()) < maskRate }
        if chosen.isEmpty { chosen = [rng.nextInt(window.count)] }
        for i in chosen {
            targets[i] = window[i]
            let r = rng.nextUnit()
            if r < 0.8 { tokens[i] = maskID } else if r < 0.9 { tokens[i] = randomTokens.lowerBound + rng.nextInt(randomTokens.count) }
        }
        return (tokens, targets)
    }

    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        var tokens: [[Int]] = [], targets: [Int] = []
        for _ in 0..<batchSize {
            let start = rng.nextInt(train.count - context + 1)
            let (t, y) = corrupt(Array(train[start..<(start + context)]), rng: &rng)
            tokens.append(t)
            targets += y
        }
        return Batch(tokens: tokens, targets: targets)
    }

    /// Masked-token loss (nats) and accuracy (the original token ranked first) on consecutive windows of the
    /// held-out stream, corrupted with a generator seeded by `seed` (the same positions every time).
    public func evaluate(_ model: HookedTransformer, maxTokens: Int = 50_000, seed: UInt64 = 0) throws -> (loss: Float, accuracy: Float, masked: Int) {
        try Self.evaluate(model, stream: Array(heldOut.prefix(maxTokens)), maskID: maskID, randomTokens: randomTokens,
                          maskRate: maskRate, context: context, seed: seed)
    }

    /// The same on any stream, in windows of `context` tokens.
    /// - Throws: `TrainingError.invalid` for a model that is not a masked-LM encoder, an empty stream, or random
    ///   replacements that are empty or include the mask token.
    public static func evaluate(_ model: HookedTransformer, stream: [Int], maskID: Int, randomTokens: Range<Int>,
                                maskRate: Double = 0.15, context: Int, seed: UInt64) throws -> (loss: Float, accuracy: Float, masked: Int) {
        guard model.config.bidirectional, model.config.hasUnembedding else {
            throw TrainingError.invalid("masked-token evaluation needs a bidirectional model with token predictions; \(model.config.architecture) is not one")
        }
        guard !randomTokens.isEmpty, !randomTokens.contains(maskID) else {
            throw TrainingError.invalid("random replacements need a non-empty range of ordinary tokens without the mask token")
        }
        guard context > 0 else { throw TrainingError.invalid("context must be positive") }
        var rng = SeededGenerator(seed: seed, stream: 0x5EED)
        var total = 0.0, right = 0, count = 0
        let v = model.config.dVocab
        var start = 0
        while start < stream.count {
            let window = Array(stream[start..<min(start + context, stream.count)])
            start += context
            let (tokens, targets) = corrupt(window, maskID: maskID, randomTokens: randomTokens, maskRate: maskRate, rng: &rng)
            let logProbs = try model.run([tokens]).logSoftmax()
            for (i, target) in targets.enumerated() where target >= 0 {
                let row = logProbs.scalars[(i * v)..<((i + 1) * v)]
                total -= Double(row[row.startIndex + target])
                if row.indices.max(by: { row[$0] < row[$1] }) == row.startIndex + target { right += 1 }
                count += 1
            }
        }
        guard count > 0 else { throw TrainingError.invalid("the held-out stream is empty: nothing to evaluate") }
        return (Float(total / Double(count)), Float(right) / Float(count), count)
    }
}
