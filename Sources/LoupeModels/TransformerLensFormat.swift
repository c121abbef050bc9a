// Models saved in TransformerLens's layout: `model.safetensors` with state-dict names (`embed.W_E`,
// `blocks.0.attn.W_Q` [n_heads, d_model, d_head], …) and a `config.json` holding Loupe's `ModelConfig`
// under `"loupe_config"` (with `"format": "transformer_lens"`). Python reads the weights with
// `safetensors.torch.load_file` and can pass them to `HookedTransformer.load_state_dict`.

import Foundation
import LoupeFormats
import LoupeTensor

public enum TransformerLensFormat {
    /// Writes `model` into `directory` (created if needed); `float16` halves the file (for shipped models).
    public static func write(_ model: HookedTransformer, to directory: URL, float16: Bool = false) throws {
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
        try writeSafetensors(model.weights.namedTensors, metadata: ["format": "transformer_lens"], float16: float16,
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
        let weights = try TransformerWeights(config: config, source: file.path) { name in
            file.entries[name] == nil ? nil : try file.tensor(name)
        }
        return try HookedTransformer(config: config, weights: weights)
    }
}
