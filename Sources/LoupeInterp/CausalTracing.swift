// Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", ROME): corrupt the
// subject's token embeddings with Gaussian noise, then restore one clean hidden state (or a window of MLP
// or attention outputs) at one layer and position, and measure how much of the answer's probability
// comes back.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// Which states causal tracing restores.
public enum TraceKind: String, CaseIterable, Sendable, Codable {
    /// The residual stream after a block (`hook_resid_post`).
    case resid
    /// MLP outputs (`hook_mlp_out`) of a window of blocks.
    case mlp
    /// Attention outputs (`hook_attn_out`) of a window of blocks.
    case attn

    func hook(_ l: Int) -> HookName {
        switch self {
        case .resid: return .residPost(l)
        case .mlp: return .mlpOut(l)
        case .attn: return .attnOut(l)
        }
    }
}

/// A causal trace.
public struct CausalTrace: Sendable {
    public let kind: TraceKind
    public let window: Int
    /// Positions of the corrupted subject tokens.
    public let subject: Range<Int>
    /// P(answer) in the clean run and in the corrupted runs (mean over noise samples).
    public let cleanProbability: Float
    public let corruptedProbability: Float
    /// `[n_layers, pos]`: P(answer) with the state at (layer, position) restored (mean over samples).
    public let restored: Tensor
    /// `restored − corruptedProbability`: the indirect effect of each state.
    public var indirectEffect: Tensor {
        Tensor(unchecked: restored.shape, restored.scalars.map { $0 - corruptedProbability })
    }
}

/// Seeded Gaussian noise (Box–Muller over `SeededGenerator`), as causal tracing draws it: sample `i` of a
/// trace uses seed `seed + i · 0x9E3779B9`.
public func gaussianNoise(count: Int, sigma: Float, seed: UInt64) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in
        let u1 = max(Double(rng.nextUnit()), 1e-12), u2 = Double(rng.nextUnit())
        return sigma * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

extension HookedTransformer {
    /// The standard deviation of the token embedding's entries (causal tracing's noise unit).
    public var embeddingStandardDeviation: Float {
        let x = weights.wE.scalars
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(x.count)
        return Float(variance.squareRoot())
    }

    /// The positions of `tokens` (the encoding of `prompt`) that overlap `subject`'s first occurrence in the
    /// prompt, by bytes: the span causal tracing puts noise on. A leading BOS is skipped.
    public func subjectPositions(_ subject: String, in prompt: String, tokens: [Int]) throws -> Range<Int> {
        guard let tokenizer else { throw InterpError.invalid("finding the subject's tokens needs the model's tokenizer") }
        guard !subject.isEmpty, let range = prompt.range(of: subject) else {
            throw InterpError.invalid("the subject \(subject.quotedForDisplay) is not in the prompt")
        }
        let startByte = prompt[..<range.lowerBound].utf8.count, endByte = startByte + prompt[range].utf8.count
        var offset = 0
        var positions: [Int] = []
        for (i, t) in tokens.enumerated() {
            if t == tokenizer.bosID && i == 0 { continue }
            let n = try tokenizer.decodeBytes([t]).count
            if offset < endByte && offset + n > startByte { positions.append(i) }
            offset += n
        }
        guard let first = positions.first, let last = positions.last else {
            throw InterpError.invalid("the subject \(subject.quotedForDisplay) covers no token of the prompt")
        }
        return first..<(last + 1)
    }

    /// Causal tracing of `answer` (its probability at the last position) over every layer and position.
    /// - Parameters:
    ///   - subject: the token positions whose embeddings get noise.
    ///   - window: for `.mlp` and `.attn`, the blocks restored together around each layer
    ///     (`max(0, l − window/2) ..< min(n_layers, l − window/2 + window)`); 1 for `.resid`.
    ///   - noise: the noise's standard deviation; default 3× the embedding's.
    ///   - samples: noise draws to average over, each seeded from `seed`.
    ///   - isCancelled: asked between batches; when it says yes the trace stops with `CancellationError`.
    public func causalTrace(tokens: [Int], subject: Range<Int>, answer: Int, kind: TraceKind = .resid,
                            window: Int = 1, noise: Float? = nil, samples: Int = 1, seed: UInt64 = 0,
                            progress: ProgressHandler? = nil, isCancelled: (@Sendable () -> Bool)? = nil) throws -> CausalTrace {
        let (nL, d, v) = (config.nLayers, config.dModel, config.dVocab)
        let T = tokens.count
        guard !subject.isEmpty, subject.lowerBound >= 0, subject.upperBound <= T else {
            throw InterpError.invalid("the subject must be a non-empty range of positions within 0..<\(T), found \(subject)")
        }
        guard answer >= 0 && answer < v else { throw InterpError.tokenOutOfRange(token: answer, dVocab: v) }
        guard window >= 1, samples >= 1 else { throw InterpError.invalid("window and samples must be at least 1") }
        let sigma = noise ?? 3 * embeddingStandardDeviation
        let metric = PatchMetric.probability(answer)
        let restoredHooks = Set((0..<nL).map(kind.hook))
        let (cleanLogits, cleanCache) = try runWithCache(.tokens([tokens]), select: .names(restoredHooks))
        let cleanP = metric.evaluate(cleanLogits.scalars[((T - 1) * v)..<(T * v)])

        var sum = [Float](repeating: 0, count: nL * T)
        var corruptedSum: Float = 0
        for sample in 0..<samples {
            // Gaussian noise on the subject's embeddings (Box–Muller), the same in every patched run.
            var hooks = Hooks()
            let noiseValues = gaussianNoise(count: subject.count * d, sigma: sigma, seed: seed &+ UInt64(sample) &* 0x9E37_79B9)
            let noise = Tensor(unchecked: [subject.count, d], noiseValues)    // [subject positions, d_model]
            hooks.add(.embed) { act, _ in
                for (i, p) in subject.enumerated() { act[0, p] = try act[0, p] + noise[i] }
            }
            let (corruptLogits, corruptCache) = try runWithCache(.tokens([tokens]), select: .names(patchEngineNames()), hooks: hooks)
            corruptedSum += metric.evaluate(corruptLogits.scalars[((T - 1) * v)..<(T * v)])
            var jobs: [PatchJob] = []
            for l in 0..<nL {
                let layers = kind == .resid ? l..<(l + 1) : max(0, l - window / 2)..<min(nL, l - window / 2 + window)
                for p in 0..<T {
                    var patches: [HookName: @Sendable (inout Tensor, Int, Int) -> Void] = [:]
                    for layer in layers {
                        guard let source = cleanCache[kind.hook(layer)] else { continue }
                        let clean = source[0, p]                           // [d_model]
                        patches[kind.hook(layer)] = { act, row, s in act[row, p - s] = clean }
                    }
                    jobs.append(PatchJob(index: l * T + p, layer: layers.lowerBound, start: p, patches: patches))
                }
            }
            var overall: ProgressHandler?
            if let report = progress {
                overall = { done, total in report(sample * total + done, samples * total) }
            }
            let values = try runPatchJobs(jobs, resultCount: nL * T, corruptCache: corruptCache, positions: T,
                                          scored: T - 1, metric: metric, progress: overall, isCancelled: isCancelled)
            for i in 0..<sum.count { sum[i] += values[i] }
        }
        return CausalTrace(kind: kind, window: kind == .resid ? 1 : window, subject: subject, cleanProbability: cleanP,
                           corruptedProbability: corruptedSum / Float(samples),
                           restored: Tensor(unchecked: [nL, T], sum.map { $0 / Float(samples) }))
    }
}
