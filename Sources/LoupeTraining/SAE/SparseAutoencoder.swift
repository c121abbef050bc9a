// A sparse autoencoder (SAE) on one hook point, in SAELens's parametrization
// (https://github.com/jbloomAus/SAELens, `saes/standard_sae.py`, `saes/topk_sae.py`):
//
//   sae_in      = x − b_dec                     (when applyBDecToInput)
//   hidden_pre  = sae_in · W_enc + b_enc        // [rows, d_sae]
//   feature_acts = ReLU(hidden_pre)             (standard)  or  ReLU(TopK_k(hidden_pre))  (topk)
//   x̂           = feature_acts · W_dec + b_dec  // [rows, d_in]
//
// Legend: rows (activations, e.g. batch·pos), d_in (width of the hook point), d_sae (features).
// Weights right-multiply: W_enc [d_in, d_sae], W_dec [d_sae, d_in]; row f of W_dec is feature f's direction.

import Foundation
import LoupeModels
import LoupeTensor

/// The activation function of an SAE, spelled as SAELens's `architecture`.
public enum SAEArchitecture: String, Codable, Sendable, CaseIterable {
    /// ReLU features trained with an L1 penalty (SAELens "standard").
    case standard
    /// The k largest pre-activations, then ReLU (Gao et al. 2024, "Scaling and evaluating sparse autoencoders").
    case topk
}

/// What an SAE is and where it reads from.
public struct SAEConfig: Codable, Sendable, Equatable {
    public var architecture: SAEArchitecture
    public var dIn: Int
    public var dSAE: Int
    /// Features kept per row (topk only).
    public var k: Int?
    /// The TransformerLens hook name the SAE reads (`blocks.15.hook_resid_post`).
    public var hookName: String
    /// The model it was trained on (informational).
    public var modelName: String?
    /// Subtract `b_dec` from the input before encoding (SAELens default true).
    public var applyBDecToInput: Bool = true
    /// TopK on pre-activations multiplied by decoder norms, and activations divided by them before
    /// decoding (SAELens `rescale_acts_by_decoder_norm`). Loupe trains with unit-norm decoder rows, where
    /// this changes nothing; it is honoured for SAEs that SAELens saved.
    public var rescaleActsByDecoderNorm: Bool = false
    /// Window length of the training text (SAELens `context_size`).
    public var contextSize: Int?

    public init(architecture: SAEArchitecture, dIn: Int, dSAE: Int, k: Int? = nil, hookName: String,
                modelName: String? = nil, contextSize: Int? = nil) {
        self.architecture = architecture
        self.dIn = dIn
        self.dSAE = dSAE
        self.k = k
        self.hookName = hookName
        self.modelName = modelName
        self.contextSize = contextSize
    }

    /// Checks the sizes: d_in, d_sae ≥ 1 and, for topk, 1 ≤ k ≤ d_sae.
    public func validate() throws {
        guard dIn >= 1, dSAE >= 1 else { throw SAEError.invalid("d_in and d_sae must be ≥ 1, found \(dIn) and \(dSAE)") }
        if architecture == .topk {
            guard let k, k >= 1, k <= dSAE else {
                throw SAEError.invalid("a topk SAE needs 1 ≤ k ≤ d_sae (\(dSAE)), found k = \(k.map(String.init) ?? "none")")
            }
        }
    }
}

/// What went wrong with an SAE.
public enum SAEError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case shape(tensor: String, expected: [Int], found: [Int])
    case file(path: String, reason: String)
    case unsupported(path: String, what: String)

    public var description: String {
        switch self {
        case .invalid(let m): return m
        case .shape(let t, let e, let f): return "\(t): expected shape \(e), found \(f)"
        case .file(let p, let r): return "\(p): \(r)"
        case .unsupported(let p, let w): return "\(p): \(w) is not supported (Loupe reads SAELens 'standard' and 'topk' SAEs with normalize_activations 'none')"
        }
    }
}

/// A sparse autoencoder: weights and the plain-tensor (inference) forward pass.
public struct SparseAutoencoder: Sendable {
    public var config: SAEConfig
    public var wEnc: Tensor   // [d_in, d_sae]
    public var bEnc: Tensor   // [d_sae]
    public var wDec: Tensor   // [d_sae, d_in]
    public var bDec: Tensor   // [d_in]

    /// An SAE from weights, checking every shape against the config.
    public init(config: SAEConfig, wEnc: Tensor, bEnc: Tensor, wDec: Tensor, bDec: Tensor) throws {
        try config.validate()
        let (d, s) = (config.dIn, config.dSAE)
        for (name, t, shape) in [("W_enc", wEnc, [d, s]), ("b_enc", bEnc, [s]), ("W_dec", wDec, [s, d]), ("b_dec", bDec, [d])]
        where t.shape != shape {
            throw SAEError.shape(tensor: name, expected: shape, found: t.shape)
        }
        self.config = config
        self.wEnc = wEnc
        self.bEnc = bEnc
        self.wDec = wDec
        self.bDec = bDec
    }

    /// A fresh SAE: unit-norm random decoder rows, `W_enc = W_decᵀ` (the tied initialization of Gao et al.
    /// and Anthropic's April 2024 update), zero biases (set `bDec` from the data afterwards).
    public static func initialized(_ config: SAEConfig, seed: UInt64) throws -> SparseAutoencoder {
        try config.validate()
        let (d, s) = (config.dIn, config.dSAE)
        var rng = SeededGenerator(seed: seed, stream: 11)
        var dec = [Float](repeating: 0, count: s * d)
        for i in 0..<dec.count { dec[i] = rng.nextGaussian() }
        var sae = try SparseAutoencoder(config: config, wEnc: Tensor(zeros: [d, s]), bEnc: Tensor(zeros: [s]),
                                        wDec: Tensor(unchecked: [s, d], dec), bDec: Tensor(zeros: [d]))
        sae.normalizeDecoder()
        sae.wEnc = sae.wDec.transposed2D()
        return sae
    }

    /// The L2 norm of each decoder row: `[d_sae]`.
    public var decoderNorms: [Float] {
        let d = config.dIn
        return wDec.scalars.withUnsafeBufferPointer { w in
            (0..<config.dSAE).map { f in Kernels.dot(w.baseAddress! + f * d, w.baseAddress! + f * d, count: d).squareRoot() }
        }
    }

    /// Scales every decoder row to unit norm (rows of norm 0 are left alone).
    public mutating func normalizeDecoder() {
        let d = config.dIn
        let norms = decoderNorms
        wDec.scalars.withUnsafeMutableBufferPointer { w in
            for f in 0..<config.dSAE where norms[f] > 0 { Kernels.scale(w.baseAddress! + f * d, count: d, by: 1 / norms[f]) }
        }
    }

    /// The pre-activations `[rows, d_sae]` of activations `[..., d_in]` (flattened to rows).
    public func hiddenPre(_ x: Tensor) throws -> Tensor {
        guard x.shape.last == config.dIn else {
            throw SAEError.shape(tensor: "SAE input (\(config.hookName))", expected: [-1, config.dIn], found: x.shape)
        }
        let rows = x.count / config.dIn
        var input = try x.reshaped([rows, config.dIn])
        if config.applyBDecToInput {
            input.scalars.withUnsafeMutableBufferPointer { p in
                bDec.scalars.withUnsafeBufferPointer { b in
                    for r in 0..<rows { for c in 0..<config.dIn { p[r * config.dIn + c] -= b[c] } }
                }
            }
        }
        var pre = try input.matmul(wEnc)   // [rows, d_sae]
        let s = config.dSAE
        let norms = config.rescaleActsByDecoderNorm ? decoderNorms : nil
        pre.scalars.withUnsafeMutableBufferPointer { p in
            bEnc.scalars.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    for f in 0..<s { p[r * s + f] += b[f] }
                    if let norms { for f in 0..<s { p[r * s + f] *= norms[f] } }
                }
            }
        }
        return pre
    }

    /// Feature activations `[rows, d_sae]` of activations `[..., d_in]`.
    public func encode(_ x: Tensor) throws -> Tensor {
        let pre = try hiddenPre(x)
        switch config.architecture {
        case .standard:
            var out = pre
            out.scalars.withUnsafeMutableBufferPointer { p in for i in 0..<p.count where !(p[i] > 0) { p[i] = 0 } }
            return out
        case .topk:
            return try Variable(pre).topKReLU(config.k ?? 1).value
        }
    }

    /// The reconstruction `[rows, d_in]` of feature activations `[rows, d_sae]`; sparse rows (TopK) take
    /// a path that touches only their nonzero features.
    public func decode(_ features: Tensor) throws -> Tensor {
        guard features.rank == 2, features.shape[1] == config.dSAE else {
            throw SAEError.shape(tensor: "feature activations", expected: [-1, config.dSAE], found: features.shape)
        }
        var f = features
        if config.rescaleActsByDecoderNorm {
            let norms = decoderNorms, s = config.dSAE
            f.scalars.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count where p[i] != 0 { p[i] /= norms[i % s] }
            }
        }
        let out: Tensor
        if config.architecture == .topk {
            out = try Variable(f).sparseMatmul(Variable(wDec)).value
        } else {
            out = try f.matmul(wDec)
        }
        return out.addingRowVector(bDec)
    }

    /// The reconstruction of activations `[..., d_in]`, as `[rows, d_in]`.
    public func reconstruct(_ x: Tensor) throws -> Tensor { try decode(encode(x)) }
}

extension Tensor {
    /// `[n, m]` → `[m, n]`.
    func transposed2D() -> Tensor {
        let (n, m) = (shape[0], shape[1])
        var out = [Float](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { out[j * n + i] = scalars[i * m + j] } }
        return Tensor(unchecked: [m, n], out)
    }

    /// Adds a `[n]` vector to every row of a `[rows, n]` tensor.
    func addingRowVector(_ v: Tensor) -> Tensor {
        var out = self
        let n = v.count
        out.scalars.withUnsafeMutableBufferPointer { p in
            v.scalars.withUnsafeBufferPointer { b in
                for r in 0..<(p.count / max(n, 1)) { Kernels.add(p.baseAddress! + r * n, b.baseAddress!, count: n) }
            }
        }
        return out
    }
}
