// The explorer's SAE view (`loupe serve --sae FOLDER`), after `loupe features` and Neuronpedia's search by
// inference: the features an SAE finds on a prompt (each one's activation on every token), how well it
// reconstructs the prompt's activations, one feature's logit effect, and the next-token predictions with the
// SAE spliced in, with a feature ablated or steered.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining

public struct FeaturesRequest: PromptRequest, ModelNamed {
    public let model: String; public let prompt: String?; public let ids: [Int]?
    /// The SAE's name (its folder's name); default: the model's first.
    public let sae: String?
    /// Features listed, strongest first (default 10).
    public let top: Int?
    /// One feature to show in detail: its logit effect, and the splice below.
    public let feature: Int?
    /// Tokens of its logit effect each way (default 8).
    public let topK: Int?
    /// `ablate` (x − f(x)·W_dec[f]) or `steer` (x + scale·W_dec[f]) the feature in the predictions; needs `feature`.
    public let splice: String?
    /// The steering scale (default 10).
    public let scale: Float?
}

public struct FeaturesResponse: Codable, Sendable {
    public struct Feature: Codable, Sendable {
        public let feature: Int
        /// Its largest activation on the prompt (position 0 left out, as in training), and where.
        public let max: Float
        public let position: Int
        /// Its activation on every token.
        public let activations: [Float]
    }
    public struct Selected: Codable, Sendable {
        public let feature: Int
        public let activations: [Float]
        /// W_dec[f] through the final norm's weight and W_U (nil when the SAE's hook is not d_model wide).
        public let promoted: [Candidate]?
        public let suppressed: [Candidate]?
    }
    public struct Prediction: Codable, Sendable { public let mode: String; public let top: [Candidate] }
    public let model: String
    public let sae: String
    public let hook: String
    public let architecture: String
    public let dIn: Int
    public let dSAE: Int
    public let tokens: [TokenInfo]
    public let features: [Feature]
    /// Features active on each token (L0).
    public let active: [Int]
    /// Σ‖x − x̂‖² / Σ‖x − x̄‖² over the prompt's positions after the first (nil with fewer than two of them).
    public let fractionOfVarianceUnexplained: Float?
    public let selected: Selected?
    /// The next token: clean, with the SAE's reconstruction spliced in, and with the splice asked for.
    public let predictions: [Prediction]
    /// Why the SAE could not be spliced in, when it could not (only `clean` is then predicted).
    public let spliceNote: String?
}

extension Analyses {
    func features(_ r: FeaturesRequest) throws -> FeaturesResponse {
        guard let attached = r.sae.map({ n in saes.first { $0.name == n } }) ?? saes.first else {
            throw APIError.unprocessable(saes.isEmpty
                ? "\(name) has no SAE: start the server with --sae FOLDER (an SAE from `loupe train sae` or SAELens, trained on this model)"
                : "'sae': \(name) has no SAE named '\(r.sae ?? "")'; it has \(saes.map(\.name).joined(separator: ", "))")
        }
        let sae = attached.sae, s = sae.config.dSAE
        let hook = try HookName(parsing: sae.config.hookName)
        let top = try count(r.top, field: "top", default: 10), k = try count(r.topK, field: "topK", default: 8)
        if let f = r.feature, !(0..<s).contains(f) {
            throw APIError.unprocessable("'feature' \(f) is out of range: \(attached.name) has features 0..<\(s)")
        }
        let splice = try r.splice.map { text -> SAESplice in
            guard let f = r.feature else { throw APIError.unprocessable("'splice' needs 'feature'") }
            switch text {
            case "ablate": return .ablate(feature: f)
            case "steer":
                let scale = r.scale ?? 10
                guard scale.isFinite else { throw APIError.unprocessable("'scale' must be a finite number") }
                return .steer(feature: f, scale: scale)
            default: throw APIError.unprocessable("'splice' must be ablate or steer, found '\(text)'")
            }
        }
        let ids = try tokens(r)
        let x = try loaded.model.hookRows(hook, windows: [ids], dropFirst: false)   // [T, d_in]
        guard x.rank == 2, x.shape[1] == sae.config.dIn else {
            throw APIError.unprocessable("\(attached.name) reads \(sae.config.dIn)-wide rows at \(hook); \(name) has \(x.shape.last ?? 0) there")
        }
        let acts = try sae.encode(x)   // [T, d_sae]
        let t = ids.count, from = t > 1 ? 1 : 0
        func column(_ f: Int) -> [Float] { (0..<t).map { acts.scalars[$0 * s + f] } }
        var best = [(feature: Int, max: Float, position: Int)]()
        for f in 0..<s {
            var m: Float = 0, at = -1
            for p in from..<t where acts.scalars[p * s + f] > m { m = acts.scalars[p * s + f]; at = p }
            if at >= 0 { best.append((f, m, at)) }
        }
        best.sort { ($0.max, $1.feature) > ($1.max, $0.feature) }
        let features = best.prefix(top).map { FeaturesResponse.Feature(feature: $0.feature, max: $0.max, position: $0.position, activations: column($0.feature)) }
        let active = (0..<t).map { p in (0..<s).reduce(0) { $0 + (acts.scalars[p * s + $1] != 0 ? 1 : 0) } }

        var selected: FeaturesResponse.Selected?
        if let f = r.feature {
            var promoted: [Candidate]?, suppressed: [Candidate]?
            if sae.config.dIn == config.dModel {
                let effect = try loaded.model.saeLogitEffect(sae, feature: f)
                let up = topK(effect[...], k: k), down = topK(effect.map { -$0 }[...], k: k)
                promoted = valueCandidates(up.map { TokenPrediction(id: $0.index, probability: 0, logit: $0.value) })
                suppressed = valueCandidates(down.map { TokenPrediction(id: $0.index, probability: 0, logit: -$0.value) })
            }
            selected = .init(feature: f, activations: column(f), promoted: promoted, suppressed: suppressed)
        }

        var modes: [(String, Hooks)] = [("clean", [:]), ("sae", [hook: try sae.hook(.reconstruct)])]
        if let splice, case .ablate(let f) = splice { modes.append(("ablate \(f)", [hook: try sae.hook(splice)])) }
        if let splice, case .steer(let f, let scale) = splice { modes.append(("steer \(f) × \(scale)", [hook: try sae.hook(splice)])) }
        var predictions: [FeaturesResponse.Prediction] = []
        var spliceNote: String?
        for (mode, hooks) in modes {
            do {
                predictions.append(.init(mode: mode, top: candidates(try loaded.model.run(.tokens([ids]), hooks: hooks).topPredictions(k: 5))))
            } catch SAEError.shape(let tensor, let expected, let found) {
                // Splicing replaces [batch, pos, d_in] activations: an SAE on per-head activations (hook_z) reads them only.
                spliceNote = "the SAE is not spliced in: \(tensor) has shape \(found), the splice needs \(expected)"
                break
            }
        }
        return FeaturesResponse(model: name, sae: attached.name, hook: sae.config.hookName, architecture: sae.config.architecture.rawValue,
                                dIn: sae.config.dIn, dSAE: s, tokens: info(ids), features: features, active: active,
                                fractionOfVarianceUnexplained: try Self.fvu(x, try sae.decode(acts), from: from),
                                selected: selected, predictions: predictions, spliceNote: spliceNote)
    }

    /// Σ‖x − x̂‖² / Σ‖x − x̄‖² over rows `from...` of `[rows, d]` activations and their reconstructions.
    static func fvu(_ x: Tensor, _ xHat: Tensor, from: Int) throws -> Float? {
        let (rows, d) = (x.shape[0], x.shape[1])
        guard rows - from >= 2 else { return nil }
        var mean = [Double](repeating: 0, count: d)
        for r in from..<rows { for j in 0..<d { mean[j] += Double(x.scalars[r * d + j]) } }
        for j in 0..<d { mean[j] /= Double(rows - from) }
        var error = 0.0, total = 0.0
        for r in from..<rows {
            for j in 0..<d {
                let v = Double(x.scalars[r * d + j])
                error += (v - Double(xHat.scalars[r * d + j])) * (v - Double(xHat.scalars[r * d + j]))
                total += (v - mean[j]) * (v - mean[j])
            }
        }
        return total > 0 ? Float(error / total) : nil
    }
}
