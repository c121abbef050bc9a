// Reading a Hugging Face `config.json` strictly: every key a loader reads is typed and checked, keys known
// to leave the computation alone (dropout, token ids, bookkeeping) are passed over, and any other key is an
// error — a key that changes the maths and is not understood must never be silently ignored.

import Foundation

/// A parsed `config.json` being read by one architecture's loader.
final class HFConfigReader {
    let json: [String: Any]
    let path: String
    private var read: Set<String> = []

    init(json: [String: Any], path: String) {
        self.json = json
        self.path = path
    }

    /// Keys of every transformers config that do not change a forward pass in float32 without dropout.
    static let bookkeeping: Set<String> = [
        "architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "use_cache",
        "bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "sep_token_id", "decoder_start_token_id",
        "initializer_range", "attention_dropout", "hidden_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_activation", "summary_first_dropout", "summary_proj_to_labels",
        "summary_type", "summary_use_proj", "classifier_dropout", "output_attentions", "output_hidden_states",
        "return_dict", "id2label", "label2id", "problem_type", "tokenizer_class", "prefix", "task_specific_params",
        "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "add_cross_attention", "tie_encoder_decoder",
        "cache_implementation", "pretraining_tp", "use_return_dict", "torchscript", "pruned_heads", "finetuning_task",
        "cross_attention_hidden_size", "temperature", "top_k", "top_p", "max_length", "min_length", "do_sample",
        "num_beams", "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "bad_words_ids",
        "num_return_sequences", "early_stopping", "diversity_penalty", "num_beam_groups", "typical_p",
        "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
        "suppress_tokens", "begin_suppress_tokens", "encoder_no_repeat_ngram_size", "output_scores",
        "return_dict_in_generate", "tf_legacy_loss", "use_bfloat16", "torch_compile", "auto_map", "transformers_version",
        "max_new_tokens", "bos_token", "eos_token", "layer_norm_epsilon_is_unused",
    ]

    /// Whether the key is present and not null.
    func has(_ key: String) -> Bool { json[key] != nil && !(json[key] is NSNull) }

    private func value(_ key: String) -> Any? {
        read.insert(key)
        guard let v = json[key], !(v is NSNull) else { return nil }
        return v
    }

    private func wrongType(_ key: String, _ expected: String) -> ModelError {
        .invalidConfig("\(path): '\(key)' must be \(expected), found \(json[key].map { "\($0)" } ?? "nothing")")
    }

    /// An integer; `def` when absent or null (nil: required).
    func int(_ key: String, _ def: Int? = nil) throws -> Int {
        guard let v = value(key) else {
            if let def { return def }
            throw ModelError.invalidConfig("\(path): '\(key)' is required")
        }
        return try Self.integer(v) ?? { throw wrongType(key, "an integer") }()
    }

    /// An integer or nil when absent or null.
    func optionalInt(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        return try Self.integer(v) ?? { throw wrongType(key, "an integer or null") }()
    }

    /// A number; `def` when absent or null (nil: required).
    func double(_ key: String, _ def: Double? = nil) throws -> Double {
        guard let v = value(key) else {
            if let def { return def }
            throw ModelError.invalidConfig("\(path): '\(key)' is required")
        }
        return try Self.number(v) ?? { throw wrongType(key, "a number") }()
    }

    /// A number or nil when absent or null.
    func optionalDouble(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        return try Self.number(v) ?? { throw wrongType(key, "a number or null") }()
    }

    /// A boolean; `def` when absent or null.
    func bool(_ key: String, _ def: Bool) throws -> Bool {
        guard let v = value(key) else { return def }
        guard let n = v as? NSNumber, String(cString: n.objCType) == "c" else { throw wrongType(key, "true or false") }
        return n.boolValue
    }

    /// A string; `def` when absent or null (nil: required).
    func string(_ key: String, _ def: String? = nil) throws -> String {
        guard let v = value(key) else {
            if let def { return def }
            throw ModelError.invalidConfig("\(path): '\(key)' is required")
        }
        guard let s = v as? String else { throw wrongType(key, "a string") }
        return s
    }

    /// A JSON object, or nil when absent or null.
    func object(_ key: String) throws -> [String: Any]? {
        guard let v = value(key) else { return nil }
        guard let o = v as? [String: Any] else { throw wrongType(key, "an object") }
        return o
    }

    /// An array of strings, or nil when absent or null.
    func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v as? [String] else { throw wrongType(key, "an array of strings") }
        return a
    }

    /// Marks keys as understood without reading them (a loader that knows they do not matter for it).
    func accept(_ keys: String...) { read.formUnion(keys) }

    /// The key must be absent, null, or equal to `allowed` (a setting Loupe implements only one way).
    func require(_ key: String, isOneOf allowed: [Any], because why: String) throws {
        guard let v = value(key) else { return }
        let ok = allowed.contains { a in
            if let a = a as? Bool, let n = v as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue == a }
            if let a = a as? String, let s = v as? String { return a == s }
            if let a = a as? Double, let x = Self.number(v) { return a == x }
            return false
        }
        if !ok { throw ModelError.invalidConfig("\(path): \(key) = \(v) is not supported (\(why))") }
    }

    /// Fails on any key that no step read or accepted and that is not bookkeeping.
    func finish(architecture: String) throws {
        let unknown = json.keys.filter { !read.contains($0) && !Self.bookkeeping.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ModelError.invalidConfig("\(path): \(architecture) config key\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) not understood by Loupe; it may change the computation, so the model is not loaded")
        }
    }

    static func integer(_ v: Any) -> Int? {
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 1e15 else { return nil }
        return n.intValue
    }

    static func number(_ v: Any) -> Double? {
        guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        return n.doubleValue.isFinite ? n.doubleValue : nil
    }
}

extension HFConfigReader {
    /// The rotary settings: transformers 5's `rope_parameters` (a dict, or for Gemma 3 one dict per layer
    /// type) or the older `rope_theta` + `rope_scaling`. Returns the global settings and, when given, the
    /// sliding layers' own; `partial_rotary_factor` inside the parameters is returned too.
    func rope(defaultTheta: Double) throws -> (global: ModelConfig.Rope, sliding: ModelConfig.Rope?, partialFactor: Double?) {
        if let params = try object("rope_parameters") {
            if params["full_attention"] != nil || params["sliding_attention"] != nil {
                let unknown = params.keys.filter { $0 != "full_attention" && $0 != "sliding_attention" }
                if !unknown.isEmpty { throw ModelError.invalidConfig("\(path): rope_parameters has unknown layer types \(unknown.sorted())") }
                guard let full = params["full_attention"] as? [String: Any] else {
                    throw ModelError.invalidConfig("\(path): rope_parameters.full_attention must be an object")
                }
                let g = try ropeSettings(full, key: "rope_parameters.full_attention", defaultTheta: defaultTheta)
                var s: (ModelConfig.Rope, Double?)? = nil
                if let sliding = params["sliding_attention"] {
                    guard let o = sliding as? [String: Any] else {
                        throw ModelError.invalidConfig("\(path): rope_parameters.sliding_attention must be an object")
                    }
                    s = try ropeSettings(o, key: "rope_parameters.sliding_attention", defaultTheta: defaultTheta)
                }
                if s?.1 != g.1 { throw ModelError.invalidConfig("\(path): partial_rotary_factor differs between layer types") }
                _ = try optionalDouble("rope_theta")   // transformers may also write the global theta at the top
                return (g.0, s?.0, g.1)
            }
            let g = try ropeSettings(params, key: "rope_parameters", defaultTheta: try double("rope_theta", defaultTheta))
            if has("rope_scaling") {
                let legacy = try ropeSettings(try object("rope_scaling") ?? [:], key: "rope_scaling", defaultTheta: g.0.base)
                if legacy.0 != g.0 { throw ModelError.invalidConfig("\(path): rope_scaling disagrees with rope_parameters") }
            }
            return (g.0, nil, g.1)
        }
        let theta = try double("rope_theta", defaultTheta)
        let g = try ropeSettings(try object("rope_scaling") ?? [:], key: "rope_scaling", defaultTheta: theta)
        return (g.0, nil, g.1)
    }

    private func ropeSettings(_ o: [String: Any], key: String, defaultTheta: Double) throws -> (ModelConfig.Rope, Double?) {
        let known: Set<String> = ["rope_type", "type", "rope_theta", "factor", "low_freq_factor", "high_freq_factor",
                                  "original_max_position_embeddings", "partial_rotary_factor"]
        let unknown = o.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty { throw ModelError.invalidConfig("\(path): \(key) has keys Loupe does not understand: \(unknown)") }
        func num(_ k: String) throws -> Double? {
            guard let v = o[k], !(v is NSNull) else { return nil }
            guard let x = Self.number(v) else { throw ModelError.invalidConfig("\(path): \(key).\(k) must be a number, found \(v)") }
            return x
        }
        let type = (o["rope_type"] as? String) ?? (o["type"] as? String) ?? "default"
        let theta = try num("rope_theta") ?? defaultTheta
        guard theta > 0 else { throw ModelError.invalidConfig("\(path): rope_theta must be positive, found \(theta)") }
        let partial = try num("partial_rotary_factor")
        switch type {
        case "default":
            if let f = try num("factor"), f != 1 {
                throw ModelError.invalidConfig("\(path): \(key) has rope_type default with factor \(f)")
            }
            return (ModelConfig.Rope(base: theta), partial)
        case "linear":
            guard let f = try num("factor") else { throw ModelError.invalidConfig("\(path): \(key): linear rope scaling needs a factor") }
            guard f > 0 else { throw ModelError.invalidConfig("\(path): \(key): the linear rope factor must be positive, found \(f)") }
            return (ModelConfig.Rope(base: theta, scaling: .linear(factor: f)), partial)
        case "llama3":
            guard let f = try num("factor"), let low = try num("low_freq_factor"), let high = try num("high_freq_factor"),
                  let original = try num("original_max_position_embeddings") else {
                throw ModelError.invalidConfig("\(path): \(key): llama3 rope scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            guard f > 0, low > 0, high > low else {
                throw ModelError.invalidConfig("\(path): \(key): llama3 rope scaling needs factor > 0 and 0 < low_freq_factor < high_freq_factor, found \(f), \(low), \(high)")
            }
            guard original >= 1, original <= Double(1 << 40), original == original.rounded() else {
                throw ModelError.invalidConfig("\(path): \(key): original_max_position_embeddings must be a positive whole number, found \(original)")
            }
            return (ModelConfig.Rope(base: theta, scaling: .llama3(factor: f, lowFrequencyFactor: low, highFrequencyFactor: high,
                                                                   originalContext: Int(original))), partial)
        default:
            throw ModelError.invalidConfig("\(path): \(key): rope_type '\(type)' is not supported (supported: default, linear, llama3)")
        }
    }
}
