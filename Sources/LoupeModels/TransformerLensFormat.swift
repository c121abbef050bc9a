// Models saved in TransformerLens's layout: `model.safetensors` with state-dict names (`embed.W_E`,
// `blocks.0.attn.W_Q` [n_heads, d_model, d_head], …) and a `config.json` holding Loupe's `ModelConfig`
// under `"loupe_config"` (with `"format": "transformer_lens"`). Python reads the weights with
// `safetensors.torch.load_file` and can pass them to `HookedTransformer.load_state_dict`.

import Foundation
import LoupeFormats
import LoupeTensor

public enum TransformerLensFormat {
    /// Writes `model` into `directory` (created if needed).
    public static func write(_ model: HookedTransformer, to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FileError.unwritable(path: directory.path, reason: error.localizedDescription)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let configJSON = try JSONSerialization.jsonObject(with: encoder.encode(model.config))
        let wrapper: [String: Any] = ["format": "transformer_lens", "loupe_config": configJSON]
        try writeAtomically(try JSONSerialization.data(withJSONObject: wrapper, options: [.prettyPrinted, .sortedKeys]),
                            to: directory.appendingPathComponent("config.json"))
        try writeSafetensors(model.weights.namedTensors, metadata: ["format": "transformer_lens"],
                             to: directory.appendingPathComponent("model.safetensors"))
    }

    /// Reads a model written by `write`.
    static func read(json: [String: Any], file: SafetensorsFile, path: String) throws -> HookedTransformer {
        guard let raw = json["loupe_config"] else { throw ModelError.invalidConfig("\(path): no loupe_config") }
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: JSONSerialization.data(withJSONObject: raw))
        } catch {
            throw ModelError.invalidConfig("\(path): loupe_config is not a valid Loupe config (\(error))")
        }
        try config.validate()
        func load(_ name: String) throws -> Tensor {
            guard file.entries[name] != nil else { throw ModelError.missingWeight(name: name, file: file.path) }
            return try file.tensor(name)
        }
        func optional(_ name: String) throws -> Tensor? { file.entries[name] == nil ? nil : try file.tensor(name) }
        var blocks: [BlockWeights] = []
        for l in 0..<config.nLayers {
            let p = "blocks.\(l)."
            if config.attnOnly {
                let mlp = BlockWeights.emptyMLP(dModel: config.dModel)
                blocks.append(BlockWeights(
                    ln1W: try optional(p + "ln1.w"), ln1B: try optional(p + "ln1.b"),
                    wQ: try load(p + "attn.W_Q"), bQ: try load(p + "attn.b_Q"), wK: try load(p + "attn.W_K"), bK: try load(p + "attn.b_K"),
                    wV: try load(p + "attn.W_V"), bV: try load(p + "attn.b_V"), wO: try load(p + "attn.W_O"), bO: try load(p + "attn.b_O"),
                    ln2W: nil, ln2B: nil, wIn: mlp.wIn, bIn: mlp.bIn, wGate: nil, wOut: mlp.wOut, bOut: mlp.bOut))
                continue
            }
            blocks.append(BlockWeights(
                ln1W: try optional(p + "ln1.w"), ln1B: try optional(p + "ln1.b"),
                wQ: try load(p + "attn.W_Q"), bQ: try load(p + "attn.b_Q"), wK: try load(p + "attn.W_K"), bK: try load(p + "attn.b_K"),
                wV: try load(p + "attn.W_V"), bV: try load(p + "attn.b_V"), wO: try load(p + "attn.W_O"), bO: try load(p + "attn.b_O"),
                ln2W: try optional(p + "ln2.w"), ln2B: try optional(p + "ln2.b"),
                wIn: try load(p + "mlp.W_in"), bIn: try load(p + "mlp.b_in"), wGate: try optional(p + "mlp.W_gate"),
                wOut: try load(p + "mlp.W_out"), bOut: try load(p + "mlp.b_out")))
        }
        let weights = TransformerWeights(
            wE: try load("embed.W_E"), wPos: try optional("pos_embed.W_pos"), blocks: blocks,
            lnFinalW: try optional("ln_final.w"), lnFinalB: try optional("ln_final.b"),
            wU: try load("unembed.W_U"), bU: try load("unembed.b_U"))
        return try HookedTransformer(config: config, weights: weights)
    }
}
