// ROME, Rank-One Model Editing (Meng, Bau, Andonian & Belinkov 2022, "Locating and Editing Factual
// Associations in GPT"): an MLP's output matrix read as a key→value memory, rewritten so that the key of a
// subject (the MLP's hidden activation at the subject's last token) now produces a value that makes the model
// say a new object.
//
// 1. The key k̄: `blocks.L.mlp.hook_post` at the subject's last token, averaged over the prompt behind a set
//    of short generated contexts ("{context}. {prompt}").
// 2. The left vector u = C⁻¹k̄ / ‖C⁻¹k̄‖, with C = E[k kᵀ] the keys' second moment over a corpus
//    (`loupe activation-stats`).
// 3. The value v*: a vector δ added to `blocks.L.hook_mlp_out` at the subject's last token of every context,
//    optimised by Adam to make the target the next token (negative log-likelihood), while keeping the
//    distribution after "{subject} is a" where it was (KL, weighted by `klFactor`) and δ small (a decay
//    term ‖δ‖/‖v‖², norm clamped to `clampNormFactor`·‖v‖). v* = v + δ, with v the MLP's output at the
//    bare prompt.
// 4. The rank-one update W_out ← W_out + u rᵀ, r = (v* − W_outᵀk − b) / (k·u) with k the bare prompt's key:
//    afterwards the bare prompt's MLP output is exactly v*.
// Reference: github.com/kmeng01/rome (rome/compute_u.py, compute_v.py, rome_main.py; hparams/ROME/*.json),
// whose defaults these are (GPT-2 XL's: 20 steps, lr 0.5, KL 0.0625, decay 0.5, clamp 4, contexts 10 × 5
// tokens + 10 × 10 tokens, the subject's last token).

import Foundation
import LoupeModels
import LoupeTensor

/// What goes wrong when editing a model.
public enum EditError: Error, CustomStringConvertible, Equatable {
    case subjectNotInPrompt(subject: String, prompt: String)
    case targetNotOneToken(String)
    case unsupportedModel(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .subjectNotInPrompt(let s, let p):
            return "the subject \(s.quotedForDisplay) does not occur in the prompt \(p.quotedForDisplay); "
                + "give a prompt that names the subject, e.g. --prompt \"The Eiffel Tower is located in\" --subject \"Eiffel Tower\""
        case .targetNotOneToken(let m): return m
        case .unsupportedModel(let m): return m
        case .invalid(let m): return m
        }
    }
}

/// ROME's settings; the defaults are the paper's (GPT-2 XL).
public struct ROMESettings: Sendable, Equatable, Codable {
    /// The block whose MLP output matrix (`blocks.L.mlp.W_out`) is rewritten.
    public var layer: Int
    /// Adam steps for v* (at most `steps − 1` updates: the last pass only measures).
    public var steps = 20
    public var learningRate: Float = 0.5
    /// Weight of KL(new ‖ old) of the next-token distribution after "{subject} is a", at the subject.
    public var klFactor: Float = 0.0625
    /// Weight of ‖δ‖ / ‖v‖².
    public var weightDecay: Float = 0.5
    /// ‖δ‖ is kept ≤ this × ‖v‖.
    public var clampNormFactor: Float = 4
    /// The optimisation stops once the loss is below this.
    public var stopLoss: Float = 0.05
    /// Generated contexts put before the prompt: `count` texts of `tokens` tokens each.
    public var contexts: [ContextLength] = [ContextLength(tokens: 5, count: 10), ContextLength(tokens: 10, count: 10)]
    /// Seed of the context generation (top-5 sampling).
    public var seed: UInt64 = 0

    public struct ContextLength: Sendable, Equatable, Codable {
        public var tokens: Int
        public var count: Int
        public init(tokens: Int, count: Int) { self.tokens = tokens; self.count = count }
    }

    public init(layer: Int) { self.layer = layer }

    func validate(_ c: ModelConfig) throws {
        guard (0..<c.nLayers).contains(layer) else {
            throw EditError.invalid("layer \(layer) is out of range 0..<\(c.nLayers)")
        }
        guard steps >= 1 else { throw EditError.invalid("steps must be ≥ 1, found \(steps)") }
        for (name, x) in [("learning rate", learningRate), ("clamp norm factor", clampNormFactor)] where !(x > 0 && x.isFinite) {
            throw EditError.invalid("\(name) must be positive, found \(x)")
        }
        for (name, x) in [("KL factor", klFactor), ("weight decay", weightDecay), ("stop loss", stopLoss)] where !(x >= 0 && x.isFinite) {
            throw EditError.invalid("\(name) must be ≥ 0, found \(x)")
        }
        for l in contexts where l.tokens < 1 || l.count < 0 {
            throw EditError.invalid("contexts need ≥ 1 token and a count ≥ 0, found \(l.tokens) tokens × \(l.count)")
        }
    }
}

/// A fact to write, in tokens. `contexts[0]` is the bare prompt; the others are the prompt behind a context.
/// Each row ends with the prompt's last token, after which the target should come.
public struct ROMETokenRequest: Sendable, Equatable {
    public var contexts: [[Int]]
    /// Where the subject's last token is in each context.
    public var subjectPositions: [Int]
    /// The token the edited model should say after the prompt.
    public var target: Int
    /// "{subject} is a", whose next-token distribution at the subject's last token is kept (KL term).
    public var klPrompt: [Int]
    public var klSubjectPosition: Int

    public init(contexts: [[Int]], subjectPositions: [Int], target: Int, klPrompt: [Int], klSubjectPosition: Int) {
        self.contexts = contexts
        self.subjectPositions = subjectPositions
        self.target = target
        self.klPrompt = klPrompt
        self.klSubjectPosition = klSubjectPosition
    }

    func validate(_ c: ModelConfig) throws {
        guard !contexts.isEmpty, contexts.count == subjectPositions.count else {
            throw EditError.invalid("\(contexts.count) contexts and \(subjectPositions.count) subject positions; expected one position per context, at least one")
        }
        for (i, (row, p)) in zip(contexts, subjectPositions).enumerated() {
            guard !row.isEmpty, (0..<row.count).contains(p) else {
                throw EditError.invalid("context \(i) has \(row.count) tokens; its subject position \(p) is outside it")
            }
            guard row.count <= c.nCtx else { throw ModelError.sequenceTooLong(length: row.count, nCtx: c.nCtx) }
        }
        guard (0..<klPrompt.count).contains(klSubjectPosition) else {
            throw EditError.invalid("the KL prompt has \(klPrompt.count) tokens; its subject position \(klSubjectPosition) is outside it")
        }
        for t in contexts.flatMap({ $0 }) + klPrompt + [target] where t < 0 || t >= c.dVocab {
            throw ModelError.tokenOutOfRange(token: t, position: 0, dVocab: c.dVocab)
        }
    }
}

/// One pass of the v* optimisation.
public struct ROMEStep: Sendable, Equatable, Codable {
    public var step: Int
    public var loss: Float
    public var nll: Float
    public var kl: Float
    public var decay: Float
    /// Mean probability of the target over the contexts.
    public var targetProbability: Float
    public var deltaNorm: Float
}

/// A computed edit: the rank-one update `blocks.L.mlp.W_out += u rᵀ` and how it was found.
public struct ROMEEdit: Sendable {
    public let layer: Int
    /// k̄: the subject's key averaged over the contexts, `[d_mlp]`.
    public let key: [Float]
    /// u = C⁻¹k̄ / ‖C⁻¹k̄‖ (k̄ / ‖k̄‖ without statistics), `[d_mlp]`.
    public let leftVector: [Float]
    /// r, `[d_model]`.
    public let rightVector: [Float]
    /// v: the MLP's output at the subject in the bare prompt, before the edit.
    public let initialValue: [Float]
    /// v* = v + δ.
    public let targetValue: [Float]
    public let steps: [ROMEStep]
    /// Whether C was used (false: the identity, the paper's ablation without the second moment).
    public let usedSecondMoment: Bool

    /// `model` with the update applied (float32 weights; a quantized model's are dequantized).
    public func applied(to model: HookedTransformer) throws -> HookedTransformer {
        var w = model.weights
        let (m, d) = (model.config.dMLP, model.config.dModel)
        guard leftVector.count == m, rightVector.count == d, layer < w.blocks.count,
              w.blocks[layer].wOut.shape == [m, d] else {
            throw EditError.invalid("this edit (layer \(layer), \(leftVector.count) × \(rightVector.count)) does not fit the model (d_mlp \(m), d_model \(d))")
        }
        var out = w.blocks[layer].wOut.scalars
        for i in 0..<m where leftVector[i] != 0 {
            let ui = leftVector[i]
            for j in 0..<d { out[i * d + j] += ui * rightVector[j] }
        }
        w.blocks[layer].wOut = Tensor(unchecked: [m, d], out)
        return try HookedTransformer(config: model.config, weights: w, tokenizer: model.tokenizer)
    }
}

public enum ROME {
    /// The closed form of steps 2 and 4: u = C⁻¹k̄ / ‖C⁻¹k̄‖ and r = (v* − v) / (k·u).
    /// - Parameters:
    ///   - meanKey: k̄, `[d_mlp]`.
    ///   - secondMoment: C, `[d_mlp · d_mlp]` row-major, or nil for the identity.
    ///   - key: k, the bare prompt's key; `value`: v, its MLP output; `target`: v*.
    /// - Throws: `EditError.invalid` for mismatched sizes, a zero key, or k·u = 0;
    ///   `TensorError.notPositiveDefinite` when C is singular.
    public static func rankOneVectors(meanKey: [Float], secondMoment: [Double]?, key: [Float], value: [Float],
                                      target: [Float]) throws -> (left: [Float], right: [Float]) {
        let m = meanKey.count
        guard m > 0, key.count == m, value.count == target.count, !value.isEmpty else {
            throw EditError.invalid("key sizes \(meanKey.count) and \(key.count), value sizes \(value.count) and \(target.count): expected equal, non-empty")
        }
        var u = meanKey.map(Double.init)
        if let c = secondMoment {
            guard c.count == m * m else {
                throw EditError.invalid("the second moment has \(c.count) entries; the MLP has \(m) neurons, so \(m * m) were expected")
            }
            u = try LAPACK.solvePositiveDefinite(c, n: m, u)
        }
        let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { throw EditError.invalid("the subject's key is zero: this MLP holds nothing about it") }
        let left = u.map { Float($0 / norm) }
        var dot: Double = 0
        for i in 0..<m { dot += Double(key[i]) * Double(left[i]) }
        guard dot != 0 else { throw EditError.invalid("the prompt's key is orthogonal to the left vector (k·u = 0)") }
        let right = zip(target, value).map { Float((Double($0) - Double($1)) / dot) }
        return (left, right)
    }

    /// Computes the edit: k̄, u, v* by optimisation, r. `progress` sees each optimisation pass.
    /// - Parameter secondMoment: C over `blocks.L.mlp.hook_post`, `[d_mlp · d_mlp]`, or nil for the identity.
    /// - Throws: `EditError` for bad requests or models ROME does not apply to, `ModelError` for bad tokens,
    ///   `TensorError.notPositiveDefinite` for a singular C.
    public static func compute(model: HookedTransformer, request r: ROMETokenRequest, secondMoment: [Double]?,
                               settings s: ROMESettings, progress: ((ROMEStep) -> Void)? = nil) throws -> ROMEEdit {
        let c = model.config
        try check(c)
        try s.validate(c)
        try r.validate(c)
        let (layer, d, m) = (s.layer, c.dModel, c.dMLP)
        if layer == c.nLayers - 1, zip(r.contexts, r.subjectPositions).contains(where: { $1 != $0.count - 1 }) {
            throw EditError.invalid("layer \(layer) is the last block: its MLP output at the subject cannot reach the prediction "
                                    + "at the prompt's end (no attention comes after it); choose an earlier layer")
        }

        // Keys at the subject over every context; the bare prompt's key and MLP output.
        var meanKey = [Double](repeating: 0, count: m)
        var key: [Float] = [], value: [Float] = []
        for (i, (row, p)) in zip(r.contexts, r.subjectPositions).enumerated() {
            let cache = try model.runWithCache(.tokens([row]), select: .names([.mlpPost(layer), .mlpOut(layer)]),
                                               options: ForwardOptions(stopAtLayer: layer + 1)).cache
            let k = try Array(cache.get(HookName.mlpPost(layer).description).scalars[(p * m)..<((p + 1) * m)])
            for j in 0..<m { meanKey[j] += Double(k[j]) }
            if i == 0 {
                key = k
                value = try Array(cache.get(HookName.mlpOut(layer).description).scalars[(p * d)..<((p + 1) * d)])
            }
        }
        let kBar = meanKey.map { Float($0 / Double(r.contexts.count)) }

        let (delta, steps) = try optimiseValue(model: model, request: r, settings: s, hook: .mlpOut(layer), initialValue: value, progress: progress)
        let target = zip(value, delta).map { $0 + $1 }
        let (left, right) = try rankOneVectors(meanKey: kBar, secondMoment: secondMoment, key: key, value: value, target: target)
        return ROMEEdit(layer: layer, key: kBar, leftVector: left, rightVector: right, initialValue: value,
                        targetValue: target, steps: steps, usedSecondMoment: secondMoment != nil)
    }

    /// Whether ROME's linear reading of the MLP output applies to this model.
    static func check(_ c: ModelConfig) throws {
        if c.attnOnly || c.dMLP == 0 { throw EditError.unsupportedModel("this model has no MLPs: ROME rewrites an MLP's output matrix") }
        if c.postNorms {
            throw EditError.unsupportedModel("this model normalises each MLP's output (\(c.architecture)): ROME needs the output "
                                             + "to be linear in W_out, and a post-MLP norm is not")
        }
    }

    /// Step 3: δ added at `hook` (ROME: the MLP output; MEMIT: the residual after the last edited block) at the
    /// subject's last token, by Adam on the tape, and each pass's figures. `initialValue` is the activation there
    /// in the bare prompt (the decay term's scale).
    static func optimiseValue(model: HookedTransformer, request r: ROMETokenRequest, settings s: ROMESettings, hook: HookName,
                              initialValue: [Float], progress: ((ROMEStep) -> Void)?) throws -> ([Float], [ROMEStep]) {
        let c = model.config
        let d = c.dModel, v = c.dVocab
        let rows = r.contexts + [r.klPrompt]
        let lookups = r.subjectPositions + [r.klSubjectPosition]
        let width = rows.map(\.count).max() ?? 0
        // Right padding: attention is causal, so what follows a row's last token changes nothing before it.
        let padded = rows.map { $0 + [Int](repeating: $0.last ?? 0, count: width - $0.count) }
        let selector = lookups.flatMap { p in (0..<width).map { $0 == p ? 1 : 0 } }
        let nRewrite = r.contexts.count
        var rowIndices: [Int] = []
        for (b, row) in r.contexts.enumerated() {
            let flat = (b * width + row.count - 1) * v
            rowIndices.append(contentsOf: flat..<(flat + v))
        }
        let klFlat = (nRewrite * width + r.klSubjectPosition) * v
        let klIndices = Array(klFlat..<(klFlat + v))

        let parameters = model.parameterVariables(trainable: false)
        let valueNormSquared = initialValue.reduce(Float(0)) { $0 + $1 * $1 }
        guard valueNormSquared > 0 else { throw EditError.invalid("the MLP's output at the subject is zero") }
        let maxNorm = s.clampNormFactor * valueNormSquared.squareRoot()
        var delta = [Float](repeating: 0, count: d)
        var adam = try AdamW(config: AdamWConfig(learningRate: s.learningRate, totalSteps: s.steps, weightDecay: 0,
                                                 beta1: 0.9, beta2: 0.999, clipNorm: nil, minLearningRateFraction: 1))
        var klReference: Tensor?
        var history: [ROMEStep] = []
        for step in 0..<s.steps {
            // Row 0 of the table is zero (every other position), row 1 is δ (the subject's last token).
            let table = Variable(Tensor(unchecked: [2, d], [Float](repeating: 0, count: d) + delta), requiresGrad: true, name: "delta")
            let addDelta: GradientHookFunction = { x, _ in
                x = try x + Variable.embedding(table, selector).reshaped(x.value.shape)
            }
            let run = try HookedTransformer.differentiableForward(config: c, parameters: parameters, tokens: padded,
                                                                  hooks: [hook: addDelta])
            let targetLogits = try run.logits.gathering(flatIndices: rowIndices).reshaped([nRewrite, v])
            let klLogits = try run.logits.gathering(flatIndices: klIndices).reshaped([1, v])
            if klReference == nil { klReference = logSoftmaxRows(klLogits.value) }
            let nll = try targetLogits.crossEntropy(targets: [Int](repeating: r.target, count: nRewrite))
            let kl = try klLogits.klDivergenceFromReference(logProbs: klReference!).scaled(by: s.klFactor)
            let deltaNorm = delta.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            let decay = s.weightDecay * deltaNorm / valueNormSquared
            let loss = nll.value.scalars[0] + kl.value.scalars[0] + decay
            let logProbs = logSoftmaxRows(targetLogits.value).scalars
            let probability = (0..<nRewrite).reduce(Float(0)) { $0 + exp(logProbs[$1 * v + r.target]) } / Float(nRewrite)
            let record = ROMEStep(step: step, loss: loss, nll: nll.value.scalars[0], kl: kl.value.scalars[0], decay: decay,
                                  targetProbability: probability, deltaNorm: deltaNorm)
            history.append(record)
            progress?(record)
            guard loss.isFinite else { throw EditError.invalid("the optimisation of v* diverged at step \(step) (loss \(loss)); try a lower learning rate") }
            if loss < s.stopLoss || step == s.steps - 1 { break }
            try (nll + kl).backward()
            var grad = Array((table.gradScalars ?? [Float](repeating: 0, count: 2 * d))[d...])
            if deltaNorm > 0 {   // d(‖δ‖)/dδ = δ/‖δ‖ (0 at δ = 0, as PyTorch's norm)
                let g = s.weightDecay / valueNormSquared / deltaNorm
                for j in 0..<d { grad[j] += g * delta[j] }
            }
            var p = ["delta": Tensor(unchecked: [d], delta)]
            adam.update(&p, gradients: ["delta": grad])
            delta = p["delta"]!.scalars
            let norm = delta.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            if norm > maxNorm { delta = delta.map { $0 * maxNorm / norm } }
        }
        return (delta, history)
    }

    static func logSoftmaxRows(_ t: Tensor) -> Tensor {
        let v = t.shape.last ?? 1
        var x = t.scalars
        x.withUnsafeMutableBufferPointer { Kernels.logSoftmaxRows($0.baseAddress!, rows: $0.count / max(v, 1), n: v) }
        return Tensor(unchecked: t.shape, x)
    }
}
