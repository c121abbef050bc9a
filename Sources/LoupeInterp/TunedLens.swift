// The tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
// Lens", https://github.com/AlignmentResearch/tuned-lens): before the final norm and the unembedding,
// each layer's residual stream goes through a learned affine translator in residual form,
// h ↦ h + h·A_l + b_l. With A_l = 0 and b_l = 0 (the initialization) it is the logit lens exactly.
// Training lives in LoupeTraining (TunedLensTrainer); this file applies and stores translators.
//
// Legend: d_model; the translator of layer l reads `blocks.{l}.hook_resid_pre` (the residual entering
// block l, as the logit lens's `{l}_pre` rows; layer 0 is the embedding). The final residual needs none.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// What is wrong with a tuned-lens file or its use.
public enum TunedLensError: Error, Equatable, CustomStringConvertible {
    /// The file is not a Loupe tuned lens (no metadata, missing tensors, unreadable).
    case notATunedLens(path: String, reason: String)
    /// A tensor has another shape than the lens's `d_model` implies.
    case badShape(path: String, tensor: String, expected: [Int], found: [Int])
    /// The lens was trained for another model shape.
    case modelMismatch(lens: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .notATunedLens(let p, let r): return "\(p) is not a tuned lens: \(r)"
        case .badShape(let p, let t, let e, let f): return "\(p): tensor \(t) should have shape \(e), found \(f)"
        case .modelMismatch(let l, let e, let f): return "the tuned lens \(l) does not fit this model: it expects \(e), the model has \(f)"
        }
    }
}

/// One affine translator per layer: `h ↦ h + h·A_l + b_l` on `[rows, d_model]` residuals.
public struct TunedLens: Sendable {
    /// The model the lens was trained on (a name for messages; shapes are what is checked).
    public var modelName: String
    public let dModel: Int
    /// `A_l`, right-multiplying: `[d_model (in), d_model (out)]`, one per layer.
    public var weights: [Tensor]
    /// `b_l`: `[d_model]`, one per layer.
    public var biases: [Tensor]

    public var nLayers: Int { weights.count }

    /// The identity lens (A = 0, b = 0): equal to the logit lens.
    public init(identityLayers nLayers: Int, dModel: Int, modelName: String) {
        self.modelName = modelName
        self.dModel = dModel
        weights = (0..<nLayers).map { _ in Tensor(zeros: [dModel, dModel]) }
        biases = (0..<nLayers).map { _ in Tensor(zeros: [dModel]) }
    }

    /// A lens from its translators; `weights[l]` is `[d_model, d_model]`, `biases[l]` is `[d_model]`.
    /// - Throws: `TunedLensError.badShape` for a wrong shape or count.
    public init(weights: [Tensor], biases: [Tensor], modelName: String) throws {
        guard let d = weights.first?.shape.last, weights.count == biases.count else {
            throw TunedLensError.notATunedLens(path: modelName, reason: "\(weights.count) weights and \(biases.count) biases (one each per layer, at least one)")
        }
        for (l, (w, b)) in zip(weights, biases).enumerated() {
            if w.shape != [d, d] { throw TunedLensError.badShape(path: modelName, tensor: Self.weightKey(l), expected: [d, d], found: w.shape) }
            if b.shape != [d] { throw TunedLensError.badShape(path: modelName, tensor: Self.biasKey(l), expected: [d], found: b.shape) }
        }
        self.modelName = modelName
        self.dModel = d
        self.weights = weights
        self.biases = biases
    }

    /// Checks that the lens fits a model: one translator per layer, same `d_model`.
    public func check(against config: ModelConfig) throws {
        guard config.nLayers == nLayers, config.dModel == dModel else {
            throw TunedLensError.modelMismatch(lens: modelName, expected: "\(nLayers) layers and d_model \(dModel)",
                                               found: "\(config.nLayers) layers and d_model \(config.dModel)")
        }
    }

    /// `h + h·A_l + b_l` for residuals `h [rows, d_model]` (any leading shape ending in d_model).
    public func translate(_ h: Tensor, layer: Int) throws -> Tensor {
        guard layer >= 0 && layer < nLayers else { throw InterpError.outOfRange(what: "tuned-lens layer", value: layer, count: nLayers) }
        guard h.shape.last == dModel else {
            throw TensorError.shapeMismatch(operation: "tuned lens translator (residual [..., d_model])", expected: [dModel], found: h.shape)
        }
        let rows = h.count / dModel
        let flat = try h.reshaped([rows, dModel])
        var out = try flat.matmul(weights[layer]) + flat   // [rows, d_model]
        let b = biases[layer].scalars
        out.scalars.withUnsafeMutableBufferPointer { o in
            b.withUnsafeBufferPointer { bp in for r in 0..<rows { Kernels.add(o.baseAddress! + r * dModel, bp.baseAddress!, count: dModel) } }
        }
        return try out.reshaped(h.shape)
    }

    // MARK: - Files

    /// Tensor names as the tuned-lens package's `layer_translators` (a PyTorch `nn.Linear` per layer).
    public static func weightKey(_ l: Int) -> String { "layer_translators.\(l).weight" }
    public static func biasKey(_ l: Int) -> String { "layer_translators.\(l).bias" }
    static let format = "loupe-tuned-lens-1"

    /// Writes the lens as safetensors: `layer_translators.{l}.weight` in `nn.Linear`'s `[out, in]` layout
    /// (so `A_lᵀ`), `layer_translators.{l}.bias` `[d_model]`, and metadata `format`, `model`, `d_model`,
    /// `n_layers`, `hook` (`resid_pre`), plus `extra` (training settings, …).
    public func save(to url: URL, extra: [String: String] = [:]) throws {
        var tensors: [(name: String, tensor: Tensor)] = []
        for l in 0..<nLayers {
            tensors.append((Self.weightKey(l), try weights[l].transposed()))
            tensors.append((Self.biasKey(l), biases[l]))
        }
        var meta = extra
        meta["format"] = Self.format
        meta["model"] = modelName
        meta["d_model"] = String(dModel)
        meta["n_layers"] = String(nLayers)
        meta["hook"] = "resid_pre"
        try writeSafetensors(tensors, metadata: meta, to: url)
    }

    /// Reads a lens written by `save(to:)`.
    /// - Throws: `TunedLensError` naming what is missing or mis-shaped, or the file's own read error.
    public static func load(path: String) throws -> TunedLens {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TunedLensError.notATunedLens(path: path, reason: "no such file")
        }
        let file = try SafetensorsFile(path: path)
        guard file.metadata["format"] == format else {
            throw TunedLensError.notATunedLens(path: path, reason: "its metadata has format \(file.metadata["format"].map { "'\($0)'" } ?? "missing"), expected '\(format)'")
        }
        guard let d = file.metadata["d_model"].flatMap(Int.init), d > 0,
              let n = file.metadata["n_layers"].flatMap(Int.init), n > 0 else {
            throw TunedLensError.notATunedLens(path: path, reason: "its metadata needs positive integers d_model and n_layers")
        }
        var ws: [Tensor] = [], bs: [Tensor] = []
        for l in 0..<n {
            for key in [weightKey(l), biasKey(l)] where file.entries[key] == nil {
                throw TunedLensError.notATunedLens(path: path, reason: "no tensor \(key) (n_layers is \(n))")
            }
            let w = try file.tensor(weightKey(l)), b = try file.tensor(biasKey(l))
            guard w.shape == [d, d] else { throw TunedLensError.badShape(path: path, tensor: weightKey(l), expected: [d, d], found: w.shape) }
            guard b.shape == [d] else { throw TunedLensError.badShape(path: path, tensor: biasKey(l), expected: [d], found: b.shape) }
            ws.append(try w.transposed())
            bs.append(b)
        }
        return try TunedLens(weights: ws, biases: bs, modelName: file.metadata["model"] ?? path)
    }
}
