// SAELens's on-disk layout (sae-lens 6.x, `SAE.save_model` / `SAE.load_from_disk`): a folder with
//   cfg.json                 {"architecture", "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input",
//                             "normalize_activations", "reshape_activations", "k" (topk),
//                             "rescale_acts_by_decoder_norm" (topk), "metadata": {"hook_name", "model_name",
//                             "context_size", "sae_lens_version", …}}
//   sae_weights.safetensors  W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]
// Older (pre-6.0) configs kept `hook_name`/`hook_point` at the top level and spelled TopK as
// `activation_fn: "topk"` with `activation_fn_kwargs: {"k": …}`; both are read.

import Foundation
import LoupeFormats
import LoupeTensor

/// Reads and writes SAEs in SAELens's folder layout.
public enum SAELensFormat {
    public static let configFile = "cfg.json"
    public static let weightsFile = "sae_weights.safetensors"
    /// The SAELens config format Loupe writes (its loader treats anything older as a pre-6.0 config).
    public static let formatVersion = "6.0.0"

    /// Writes `cfg.json` and `sae_weights.safetensors` into `directory` (created if missing).
    public static func write(_ sae: SparseAutoencoder, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let c = sae.config
        var metadata: [String: Any] = ["hook_name": c.hookName, "sae_lens_version": formatVersion,
                                       "sae_lens_training_version": formatVersion, "trained_with": "loupe"]
        if let m = c.modelName { metadata["model_name"] = m }
        if let n = c.contextSize { metadata["context_size"] = n }
        var cfg: [String: Any] = [
            "architecture": c.architecture.rawValue, "d_in": c.dIn, "d_sae": c.dSAE, "dtype": "float32",
            "device": "cpu", "apply_b_dec_to_input": c.applyBDecToInput, "normalize_activations": "none",
            "reshape_activations": "none", "metadata": metadata,
        ]
        if c.architecture == .topk {
            cfg["k"] = c.k ?? 1
            cfg["rescale_acts_by_decoder_norm"] = c.rescaleActsByDecoderNorm
        }
        let data = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: directory.appendingPathComponent(configFile))
        try writeSafetensors([("W_enc", sae.wEnc), ("b_enc", sae.bEnc), ("W_dec", sae.wDec), ("b_dec", sae.bDec)],
                             to: directory.appendingPathComponent(weightsFile))
    }

    /// Reads an SAE folder written by SAELens (or by `write`).
    /// - Throws: `SAEError.file` for a missing or malformed file, `SAEError.unsupported` for an
    ///   architecture or activation normalization Loupe does not run, `SAEError.shape` for a tensor whose
    ///   shape does not match `d_in`/`d_sae`.
    public static func read(from directory: URL) throws -> SparseAutoencoder {
        let cfgURL = directory.appendingPathComponent(configFile)
        let cfgPath = cfgURL.path
        guard let data = FileManager.default.contents(atPath: cfgPath) else {
            throw SAEError.file(path: cfgPath, reason: "not found (an SAELens SAE folder holds \(configFile) and \(weightsFile))")
        }
        guard let cfg = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAEError.file(path: cfgPath, reason: "not a JSON object")
        }
        let metadata = cfg["metadata"] as? [String: Any] ?? [:]
        func int(_ key: String) throws -> Int {
            guard let n = (cfg[key] as? NSNumber)?.intValue else {
                throw SAEError.file(path: cfgPath, reason: "expected an integer '\(key)', found \(cfg[key].map { "\($0)" } ?? "nothing")")
            }
            return n
        }
        let activationFn = (cfg["activation_fn"] ?? cfg["activation_fn_str"]) as? String
        let kwargs = cfg["activation_fn_kwargs"] as? [String: Any]
        let archName = (cfg["architecture"] as? String) ?? (activationFn == "topk" ? "topk" : "standard")
        var architecture: SAEArchitecture
        switch archName {
        case "standard":
            architecture = activationFn == "topk" ? .topk : .standard
            if let fn = activationFn, fn != "relu", fn != "topk" {
                throw SAEError.unsupported(path: cfgPath, what: "activation function '\(fn)'")
            }
        case "topk": architecture = .topk
        default: throw SAEError.unsupported(path: cfgPath, what: "architecture '\(archName)'")
        }
        let normalize = cfg["normalize_activations"] as? String ?? "none"
        guard normalize == "none" else { throw SAEError.unsupported(path: cfgPath, what: "normalize_activations '\(normalize)'") }
        let reshape = cfg["reshape_activations"] as? String ?? "none"
        guard reshape == "none" else { throw SAEError.unsupported(path: cfgPath, what: "reshape_activations '\(reshape)'") }
        if let ft = cfg["finetuning_scaling_factor"] as? Bool, ft {
            throw SAEError.unsupported(path: cfgPath, what: "finetuning_scaling_factor")
        }
        let hook = (metadata["hook_name"] ?? cfg["hook_name"] ?? cfg["hook_point"]) as? String
        guard let hook else { throw SAEError.file(path: cfgPath, reason: "no hook_name (in metadata or at the top level)") }

        var config = SAEConfig(architecture: architecture, dIn: try int("d_in"), dSAE: try int("d_sae"), hookName: hook,
                               modelName: (metadata["model_name"] ?? cfg["model_name"]) as? String,
                               contextSize: ((metadata["context_size"] ?? cfg["context_size"]) as? NSNumber)?.intValue)
        if architecture == .topk {
            config.k = (cfg["k"] as? NSNumber)?.intValue ?? (kwargs?["k"] as? NSNumber)?.intValue
            config.rescaleActsByDecoderNorm = cfg["rescale_acts_by_decoder_norm"] as? Bool ?? false
        }
        config.applyBDecToInput = cfg["apply_b_dec_to_input"] as? Bool ?? true
        architecture = config.architecture

        let weightsPath = directory.appendingPathComponent(weightsFile).path
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw SAEError.file(path: weightsPath, reason: "not found")
        }
        let file = try SafetensorsFile(path: weightsPath)
        func tensor(_ name: String) throws -> Tensor {
            guard file.entries[name] != nil else {
                throw SAEError.file(path: weightsPath, reason: "no tensor '\(name)' (found \(file.names.joined(separator: ", ")))")
            }
            return try file.tensor(name)
        }
        return try SparseAutoencoder(config: config, wEnc: tensor("W_enc"), bEnc: tensor("b_enc"),
                                     wDec: tensor("W_dec"), bDec: tensor("b_dec"))
    }
}
