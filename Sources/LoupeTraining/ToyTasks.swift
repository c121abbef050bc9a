// The toy tasks of the interpretability literature, each a data source with its model shape, default
// training settings and an accuracy measure:
// - max of a list (1 layer, 1 head, attention-only): the last position predicts the list's maximum;
// - addition of two numbers (1 layer with an MLP): a + b < 128;
// - Fibonacci-like sequences (1 layer with an MLP): s(n) = s(n−1) + s(n−2), a context of five terms;
// - induction (2 layers, attention-only): random tokens in which a segment repeats; the repeat is
//   predictable only by finding the earlier copy (previous-token head + induction head).

import Foundation
import LoupeModels
import LoupeTensor

/// A toy task: data, model shape, settings and accuracy.
public protocol ToyTask: BatchSource {
    /// The name on the command line.
    var name: String { get }
    /// The model the task trains.
    var config: ModelConfig { get }
    /// Settings that reach the task's accuracy target from a random start.
    func defaultSettings(seed: UInt64) -> TrainingSettings
    /// Accuracy of `model` on the task's evaluation set (held out where the task has one), in [0, 1].
    func accuracy(_ model: HookedTransformer) throws -> Float
}

/// Accuracy of the argmax predictions at the positions whose target is not −1.
func predictionAccuracy(_ model: HookedTransformer, _ batch: Batch, chunk: Int = 512) throws -> Float {
    var correct = 0, total = 0
    let pos = batch.tokens.first?.count ?? 0
    for start in stride(from: 0, to: batch.tokens.count, by: chunk) {
        let rows = Array(batch.tokens[start..<min(start + chunk, batch.tokens.count)])
        let logits = try model.run(rows)
        let predictions = logits.argmaxLastDim()
        for (i, p) in predictions.enumerated() {
            let target = batch.targets[start * pos + i]
            if target >= 0 { total += 1; if p == target { correct += 1 } }
        }
    }
    return total == 0 ? 0 : Float(correct) / Float(total)
}

// MARK: - Max of a list

/// The last position of a list of 2–6 numbers (0..<64) predicts their maximum.
public struct MaxOfListTask: ToyTask {
    public let name = "max"
    public let vocab = 64
    public let lengths = 2...6
    public let batchSize = 256

    public init() {}

    public var config: ModelConfig {
        ModelConfig(architecture: "loupe-toy-max", nLayers: 1, dModel: 32, nHeads: 1, dHead: 32, dMLP: 0, dVocab: vocab,
                    nCtx: lengths.upperBound, normalization: .layerNorm, attnOnly: true)
    }

    public func defaultSettings(seed: UInt64) -> TrainingSettings {
        TrainingSettings(steps: 1500, seed: seed,
                         optimizer: AdamWConfig(learningRate: 3e-3, totalSteps: 1500, warmupSteps: 50, weightDecay: 0.01))
    }

    public func sample(length: Int, count: Int, rng: inout SeededGenerator) -> Batch {
        var tokens: [[Int]] = [], targets: [Int] = []
        for _ in 0..<count {
            let list = (0..<length).map { _ in rng.nextInt(vocab) }
            tokens.append(list)
            targets += [Int](repeating: -1, count: length - 1) + [list.max()!]
        }
        return Batch(tokens: tokens, targets: targets)
    }

    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        sample(length: lengths.lowerBound + step % lengths.count, count: batchSize, rng: &rng)
    }

    /// 1,000 fresh lists of each length.
    public func accuracy(_ model: HookedTransformer) throws -> Float {
        var rng = SeededGenerator(seed: 0xE7A1)
        var sum: Float = 0
        for n in lengths { sum += try predictionAccuracy(model, sample(length: n, count: 1000, rng: &rng)) }
        return sum / Float(lengths.count)
    }
}

// MARK: - Addition and Fibonacci

/// `[a, b]` → `a + b` at the last position, for all a + b < 128; a fixed fifth of the pairs is held out.
public struct AdditionTask: ToyTask {
    public let name = "add"
    public let limit = 128
    public let batchSize = 512
    public let pairs: [(Int, Int)]
    public let trainPairs: [(Int, Int)]
    public let testPairs: [(Int, Int)]

    public init(heldOutFraction: Double = 0.2) {
        var all: [(Int, Int)] = []
        for a in 0..<128 { for b in 0..<(128 - a) { all.append((a, b)) } }
        var rng = SeededGenerator(seed: 0xADD)
        all.shuffle(using: &rng)
        let cut = Int(Double(all.count) * (1 - heldOutFraction))
        pairs = all
        trainPairs = Array(all[..<cut])
        testPairs = Array(all[cut...])
    }

    public var config: ModelConfig { Self.arithmeticConfig(name: "loupe-toy-add", nCtx: 2) }

    static func arithmeticConfig(name: String, nCtx: Int) -> ModelConfig {
        ModelConfig(architecture: name, nLayers: 1, dModel: 128, nHeads: 4, dHead: 32, dMLP: 128, dVocab: 128,
                    nCtx: nCtx, normalization: .layerNorm, activation: .relu)
    }

    public func defaultSettings(seed: UInt64) -> TrainingSettings {
        TrainingSettings(steps: 3000, seed: seed,
                         optimizer: AdamWConfig(learningRate: 3e-3, totalSteps: 3000, warmupSteps: 100, weightDecay: 0.5))
    }

    public func batch(of list: [(Int, Int)]) -> Batch {
        Batch(tokens: list.map { [$0.0, $0.1] }, targets: list.flatMap { [-1, $0.0 + $0.1] })
    }

    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        batch(of: (0..<batchSize).map { _ in trainPairs[rng.nextInt(trainPairs.count)] })
    }

    /// Accuracy on the held-out pairs.
    public func accuracy(_ model: HookedTransformer) throws -> Float { try predictionAccuracy(model, batch(of: testPairs)) }

    /// Accuracy on every pair.
    public func accuracyOnAllPairs(_ model: HookedTransformer) throws -> Float { try predictionAccuracy(model, batch(of: pairs)) }
}

/// Five terms of s(n) = s(n−1) + s(n−2) from (a, b), every term below 128 (3a + 5b < 128 for the sixth);
/// each position from the second predicts the next term.
public struct FibonacciTask: ToyTask {
    public let name = "fibonacci"
    public let batchSize = 256
    public let starts: [(Int, Int)]

    public init() {
        var s: [(Int, Int)] = []
        for a in 0..<128 { for b in 0..<128 where 3 * a + 5 * b < 128 { s.append((a, b)) } }
        starts = s
    }

    public var config: ModelConfig { AdditionTask.arithmeticConfig(name: "loupe-toy-fibonacci", nCtx: 5) }

    public func defaultSettings(seed: UInt64) -> TrainingSettings {
        TrainingSettings(steps: 2000, seed: seed,
                         optimizer: AdamWConfig(learningRate: 3e-3, totalSteps: 2000, warmupSteps: 100, weightDecay: 0.1))
    }

    /// The six terms from (a, b).
    public static func terms(_ a: Int, _ b: Int) -> [Int] {
        var t = [a, b]
        while t.count < 6 { t.append(t[t.count - 1] + t[t.count - 2]) }
        return t
    }

    public func batch(of list: [(Int, Int)]) -> Batch {
        var tokens: [[Int]] = [], targets: [Int] = []
        for (a, b) in list {
            let t = Self.terms(a, b)
            tokens.append(Array(t[0..<5]))
            targets += [-1] + Array(t[2..<6])
        }
        return Batch(tokens: tokens, targets: targets)
    }

    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        batch(of: (0..<batchSize).map { _ in starts[rng.nextInt(starts.count)] })
    }

    /// Accuracy over every sequence and every predicted term.
    public func accuracy(_ model: HookedTransformer) throws -> Float { try predictionAccuracy(model, batch(of: starts)) }
}

// MARK: - Induction

/// Sequences of random tokens in which a segment (6–20 tokens) reappears later at a random offset. Loss on
/// every position; accuracy on the repeated segment after its first token (predictable only by induction).
public struct InductionTask: ToyTask {
    public let name: String
    public let layers: Int
    public let vocab = 64
    public let length = 40
    public let batchSize = 64

    /// `layers` 2 for the induction model; 1 for the contrast (a one-layer model cannot form induction heads).
    public init(layers: Int = 2) {
        self.layers = layers
        self.name = layers == 2 ? "induction" : "induction-\(layers)l"
    }

    public var config: ModelConfig {
        ModelConfig(architecture: "loupe-toy-induction-\(layers)l", nLayers: layers, dModel: 64, nHeads: 4, dHead: 16, dMLP: 0,
                    dVocab: vocab, nCtx: length, normalization: .layerNorm, attnOnly: true)
    }

    public func defaultSettings(seed: UInt64) -> TrainingSettings {
        TrainingSettings(steps: 2500, seed: seed,
                         optimizer: AdamWConfig(learningRate: 2e-3, totalSteps: 2500, warmupSteps: 100, weightDecay: 0.01))
    }

    /// One sequence and the positions (inputs) whose next token lies inside the repeat, after its first token.
    func sequence(rng: inout SeededGenerator) -> (tokens: [Int], repeatedTargets: [Int]) {
        var tokens = (0..<length).map { _ in rng.nextInt(vocab) }
        let segment = 6 + rng.nextInt(15)                       // 6...20
        let source = rng.nextInt(length - 2 * segment + 1)       // the first copy
        let gap = rng.nextInt(length - 2 * segment - source + 1) // between the copies
        let copy = source + segment + gap
        for i in 0..<segment { tokens[copy + i] = tokens[source + i] }
        // Position copy+i−1 predicts tokens[copy+i]; from i = 1 the earlier copy tells what comes next.
        return (tokens, (1..<segment).map { copy + $0 - 1 })
    }

    public func batch(step: Int, rng: inout SeededGenerator) throws -> Batch {
        var tokens: [[Int]] = [], targets: [Int] = []
        for _ in 0..<batchSize {
            let s = sequence(rng: &rng).tokens
            tokens.append(s)
            targets += Array(s.dropFirst()) + [-1]
        }
        return Batch(tokens: tokens, targets: targets)
    }

    /// Accuracy on repeated tokens over 500 fresh sequences.
    public func accuracy(_ model: HookedTransformer) throws -> Float {
        var rng = SeededGenerator(seed: 0x1DC7)
        var tokens: [[Int]] = [], targets: [Int] = []
        for _ in 0..<500 {
            let (s, positions) = sequence(rng: &rng)
            tokens.append(s)
            var t = [Int](repeating: -1, count: length)
            for p in positions { t[p] = s[p + 1] }
            targets += t
        }
        return try predictionAccuracy(model, Batch(tokens: tokens, targets: targets))
    }
}

/// The toy tasks by command-line name.
public func toyTask(named name: String) -> ToyTask? {
    switch name {
    case "max": return MaxOfListTask()
    case "add", "addition": return AdditionTask()
    case "fibonacci", "fib": return FibonacciTask()
    case "induction": return InductionTask(layers: 2)
    case "induction-1l": return InductionTask(layers: 1)
    default: return nil
    }
}
