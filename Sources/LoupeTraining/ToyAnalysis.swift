// What the interpretability notes read off each toy model, computed from its weights and activations:
// - max of a list: the QK circuit of the last position against earlier positions (attention should grow
//   with the key's value), the OV circuit through the unembedding (a diagonal: it copies), the copying score;
// - addition and Fibonacci: effective weights W_E W_V W_O W_in per position, each neuron's activation as a
//   function of an input token and that curve's Fourier spectrum (periodic neurons);
// - induction: previous-token and induction head scores, and the K-composition between them.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor

/// Residual vectors W_E[t] + W_pos[p] for every token t at one position: `[d_vocab, d_model]`.
private func embeddings(_ m: HookedTransformer, position: Int) throws -> Tensor {
    guard let wPos = m.weights.wPos else { return m.weights.wE }
    return try m.weights.wE + wPos.slice(position)
}


// MARK: - Max of a list

public struct MaxOfListAnalysis {
    /// `[query token, key token]` attention scores of the last position (5) to a key at position 0.
    public let qkFirstKey: [Float]
    /// Mean over query tokens and key positions 0–4 of the score each key token gets: `[d_vocab]`.
    public let scoreByKeyToken: [Float]
    /// `[key token, output token]`: logits the head writes when it attends to a key token.
    public let ov: [Float]
    public let vocab: Int
    /// Accuracy per list length.
    public let accuracyByLength: [(length: Int, accuracy: Float)]
    public let copyingScore: Float

    public init(model: HookedTransformer, task: MaxOfListTask) throws {
        let c = model.config, v = c.dVocab, dh = c.dHead
        let b = model.weights.blocks[0]
        let last = task.lengths.upperBound - 1
        func normed(_ p: Int) throws -> Tensor { try c.normalize(embeddings(model, position: p), weight: b.ln1W, bias: b.ln1B) }
        let q = try normed(last).matmul(b.wQ.slice(0)) + b.bQ.slice(0)          // [v, dh]
        var perKey = [Float](repeating: 0, count: v)
        var first: [Float] = []
        for p in 0..<last {
            let k = try normed(p).matmul(b.wK.slice(0)) + b.bK.slice(0)         // [v, dh]
            let scores = try q.matmul(k.transposed()) * (1 / Float(dh).squareRoot())   // [v, v]
            if p == 0 { first = scores.scalars }
            for t in 0..<v {
                var s: Float = 0
                for qt in 0..<v { s += scores.scalars[qt * v + t] }
                perKey[t] += s / Float(v * last)
            }
        }
        qkFirstKey = first
        scoreByKeyToken = perKey
        let values = try normed(0).matmul(b.wV.slice(0)) + b.bV.slice(0)         // [v, dh]
        ov = try values.matmul(b.wO.slice(0)).matmul(model.weights.wU).scalars    // [v, v]
        vocab = v
        var rng = SeededGenerator(seed: 0xE7A1)
        accuracyByLength = try task.lengths.map { n in (n, try predictionAccuracy(model, task.sample(length: n, count: 1000, rng: &rng))) }
        copyingScore = try model.copyingScores().scalars[0]
    }

    /// Key tokens whose mean score exceeds that of the token below them (monotone attention to larger values).
    public var increasingSteps: Int { (1..<vocab).filter { scoreByKeyToken[$0] > scoreByKeyToken[$0 - 1] }.count }
    /// Key tokens whose OV row has its largest logit on the token itself.
    public var diagonalMaxima: Int { (0..<vocab).filter { t in (0..<vocab).max { ov[t * vocab + $0] < ov[t * vocab + $1] } == t }.count }

    public func report() -> String {
        var lines = ["accuracy by list length: " + accuracyByLength.map { String(format: "%d: %.1f%%", $0.length, $0.accuracy * 100) }.joined(separator: "  ")]
        lines.append("QK circuit (query at the last position, keys at earlier positions): the score rises with the key's value at \(increasingSteps) of \(vocab - 1) steps")
        let show = stride(from: 0, to: vocab, by: max(vocab / 8, 1)).map { String(format: "%d:%.1f", $0, scoreByKeyToken[$0]) }
        lines.append("  mean score by key token: " + show.joined(separator: "  "))
        lines.append("OV circuit through W_U: the diagonal is the row's largest logit for \(diagonalMaxima) of \(vocab) tokens")
        lines.append(String(format: "copying score (eigenvalues of W_E W_V W_O W_U): %.3f", copyingScore))
        return lines.joined(separator: "\n")
    }
}

// MARK: - Addition and Fibonacci

public struct ArithmeticAnalysis {
    public let vocab: Int, dMLP: Int, positions: Int
    /// Per position, `[d_vocab, d_mlp]`: norm(W_E + W_pos[p]) · Σ_h W_V[h] W_O[h] · W_in.
    public let effectiveWeights: [[Float]]
    /// `[d_mlp, tokens]`: each neuron's mean activation (last position) against the varying input token.
    public let curves: [Float]
    public let tokens: Int
    /// Per neuron: the dominant non-constant frequency, and the share of the non-constant power it holds.
    public let dominantFrequency: [Int]
    public let powerShare: [Float]
    /// Neurons whose activation varies (variance ≥ 1% of the largest).
    public let activeNeurons: [Int]
    public let varyingPosition: Int

    /// - Parameters: `batch` covers the task's inputs; `varying` is the input position the curves are drawn over.
    public init(model: HookedTransformer, batch: Batch, varying: Int) throws {
        let c = model.config, b = model.weights.blocks[0]
        vocab = c.dVocab; dMLP = c.dMLP
        positions = batch.tokens.first?.count ?? 0
        varyingPosition = varying
        // Effective weights.
        var wOV = Tensor(zeros: [c.dModel, c.dModel])
        for h in 0..<c.nHeads { wOV = try wOV + b.wV.slice(h / c.groupSize).matmul(b.wO.slice(h)) }
        effectiveWeights = try (0..<positions).map { p in
            try c.normalize(embeddings(model, position: p), weight: b.ln1W, bias: b.ln1B).matmul(wOV).matmul(b.wIn).scalars
        }
        // Neuron curves at the last position.
        let n = batch.tokens.count, pos = positions
        var post: [Float] = []
        for start in stride(from: 0, to: n, by: 1024) {
            let rows = Array(batch.tokens[start..<min(start + 1024, n)])
            let (_, cache) = try model.runWithCache(.tokens(rows), select: .names([.mlpPost(0)]))
            guard let t = cache[.mlpPost(0)] else { throw TrainingError.invalid("mlp.hook_post was not cached") }
            for r in 0..<rows.count { post += t.scalars[((r * pos + pos - 1) * c.dMLP)..<((r * pos + pos) * c.dMLP)] }
        }
        let tokenCount = (batch.tokens.map { $0[varying] }.max() ?? 0) + 1
        tokens = tokenCount
        var sums = [Float](repeating: 0, count: c.dMLP * tokenCount), counts = [Int](repeating: 0, count: tokenCount)
        for (r, row) in batch.tokens.enumerated() {
            let t = row[varying]
            counts[t] += 1
            for j in 0..<c.dMLP { sums[j * tokenCount + t] += post[r * c.dMLP + j] }
        }
        var curves = sums
        for j in 0..<c.dMLP {
            let present = (0..<tokenCount).filter { counts[$0] > 0 }
            let mean = present.map { sums[j * tokenCount + $0] / Float(counts[$0]) }.reduce(0, +) / Float(max(present.count, 1))
            for t in 0..<tokenCount { curves[j * tokenCount + t] = counts[t] > 0 ? sums[j * tokenCount + t] / Float(counts[t]) : mean }
        }
        self.curves = curves
        // Fourier spectra (discrete, over the tokens seen).
        var freq = [Int](repeating: 0, count: c.dMLP), share = [Float](repeating: 0, count: c.dMLP)
        var variance = [Float](repeating: 0, count: c.dMLP)
        let T = tokenCount
        for j in 0..<c.dMLP {
            let curve = Array(curves[(j * T)..<((j + 1) * T)])
            let mean = curve.reduce(0, +) / Float(T)
            variance[j] = curve.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(T)
            var best = 0, bestPower: Double = 0, total: Double = 0
            for k in 1...(T / 2) {
                var re: Double = 0, im: Double = 0
                for t in 0..<T {
                    let angle = 2 * Double.pi * Double(k * t) / Double(T)
                    re += Double(curve[t] - mean) * cos(angle); im -= Double(curve[t] - mean) * sin(angle)
                }
                let power = re * re + im * im
                total += power
                if power > bestPower { bestPower = power; best = k }
            }
            freq[j] = best
            share[j] = total > 0 ? Float(bestPower / total) : 0
        }
        dominantFrequency = freq
        powerShare = share
        let maxVar = variance.max() ?? 0
        activeNeurons = (0..<c.dMLP).filter { variance[$0] >= 0.01 * maxVar && maxVar > 0 }.sorted { variance[$0] > variance[$1] }
    }

    /// Share of active neurons whose curve is dominated (> 50% of its power) by one frequency.
    public var periodicFraction: Float {
        activeNeurons.isEmpty ? 0 : Float(activeNeurons.filter { powerShare[$0] > 0.5 }.count) / Float(activeNeurons.count)
    }

    public func report() -> String {
        var lines = ["neurons against input token at position \(varyingPosition) (activation at the last position; \(activeNeurons.count) of \(dMLP) active):",
                     "  neuron  freq  period  power share"]
        for j in activeNeurons.prefix(12) {
            let f = dominantFrequency[j]
            lines.append(String(format: "  %6d  %4d  %6.1f  %5.1f%%", j, f, f > 0 ? Double(tokens) / Double(f) : 0, powerShare[j] * 100))
        }
        lines.append(String(format: "periodic neurons (one frequency holds > 50%% of the power): %.0f%% of the active ones", periodicFraction * 100))
        var hist: [Int: Int] = [:]
        for j in activeNeurons where powerShare[j] > 0.5 { hist[dominantFrequency[j], default: 0] += 1 }
        if !hist.isEmpty {
            lines.append("  frequencies used: " + hist.sorted { $0.value > $1.value }.prefix(8).map { "k=\($0.key) ×\($0.value)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

// MARK: - Induction

public struct InductionAnalysis {
    public let previousToken: Tensor   // [n_layers, n_heads]
    public let induction: Tensor       // [n_layers, n_heads]
    public let kComposition: Tensor    // [n_layers, n_heads, n_layers, n_heads]
    public let firstHalfLoss: Float, secondHalfLoss: Float
    public let nLayers: Int, nHeads: Int

    public init(model: HookedTransformer) throws {
        let c = model.config
        nLayers = c.nLayers; nHeads = c.nHeads
        let length = min(15, (c.nCtx - 1) / 2)
        let test = try model.inductionTest(length: length, seed: 1)
        induction = test.scores
        firstHalfLoss = test.firstHalfLoss
        secondHalfLoss = test.secondHalfLoss
        previousToken = try model.detectHeads(tokens: test.tokens, patterns: [.previousToken])[.previousToken] ?? Tensor(zeros: [c.nLayers, c.nHeads])
        kComposition = try model.compositionScores(.k)
    }

    private func best(_ t: Tensor, layer: Int) -> (head: Int, score: Float) {
        guard layer < nLayers else { return (0, 0) }
        let row = Array(t.scalars[(layer * nHeads)..<((layer + 1) * nHeads)])
        let h = row.indices.max { row[$0] < row[$1] } ?? 0
        return (h, row[h])
    }

    /// The strongest previous-token head in layer 0.
    public var bestPreviousToken: (head: Int, score: Float) { best(previousToken, layer: 0) }
    /// The strongest induction head in the last layer.
    public var bestInduction: (head: Int, score: Float) { best(induction, layer: nLayers - 1) }
    /// K-composition from the best previous-token head into the best induction head.
    public var kCompositionOfPair: Float {
        guard nLayers >= 2 else { return 0 }
        let i = bestPreviousToken.head, j = bestInduction.head
        return kComposition.scalars[(0 * nHeads + i) * nLayers * nHeads + (nLayers - 1) * nHeads + j]
    }

    /// Mean K-composition over all (layer 0, layer 1) head pairs, the baseline for `kCompositionOfPair`.
    public var meanKComposition: Float {
        guard nLayers >= 2 else { return 0 }
        var s: Float = 0
        for i in 0..<nHeads { for j in 0..<nHeads { s += kComposition.scalars[i * nLayers * nHeads + nHeads + j] } }
        return s / Float(nHeads * nHeads)
    }

    public func report() -> String {
        var lines = ["head scores on a repeated random sequence (previous-token / induction):", "  layer.head  prev   induction"]
        for l in 0..<nLayers {
            for h in 0..<nHeads {
                lines.append(String(format: "  %5d.%-4d %5.2f  %5.2f", l, h, previousToken.scalars[l * nHeads + h], induction.scalars[l * nHeads + h]))
            }
        }
        lines.append(String(format: "loss on the first copy %.3f, on the repeat %.3f", firstHalfLoss, secondHalfLoss))
        if nLayers >= 2 {
            lines.append(String(format: "previous-token head 0.%d (%.2f) → induction head %d.%d (%.2f): K-composition %.3f (mean over layer-0 → layer-1 pairs %.3f)",
                                bestPreviousToken.head, bestPreviousToken.score, nLayers - 1, bestInduction.head, bestInduction.score,
                                kCompositionOfPair, meanKComposition))
        }
        return lines.joined(separator: "\n")
    }
}
