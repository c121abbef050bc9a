// The config keys decoder families share (sizes, activation, norms, rotary, sliding windows), read
// strictly from a Hugging Face `config.json`.

extension HFConfigReader {
    /// Sizes every decoder config has, under their Llama-style names.
    struct Sizes {
        let layers: Int, dModel: Int, heads: Int, kvHeads: Int, dHead: Int, dMLP: Int, vocab: Int, context: Int
    }

    /// Reads the Llama-style size keys (`head_dim` defaults to hidden_size / num_attention_heads).
    func sizes(contextDefault: Int) throws -> Sizes {
        let d = try int("hidden_size"), h = try int("num_attention_heads")
        guard d > 0, h > 0 else { throw ModelError.invalidConfig("\(path): hidden_size and num_attention_heads must be positive, found \(d) and \(h)") }
        let dh = try optionalInt("head_dim") ?? d / h
        if !has("head_dim") && d % h != 0 {
            throw ModelError.invalidConfig("\(path): hidden_size (\(d)) must be a multiple of num_attention_heads (\(h)) when head_dim is not given")
        }
        return Sizes(layers: try int("num_hidden_layers"), dModel: d, heads: h, kvHeads: try int("num_key_value_heads", h),
                     dHead: dh, dMLP: try int("intermediate_size"), vocab: try int("vocab_size"),
                     context: try int("max_position_embeddings", contextDefault))
    }

    /// The MLP activation under `key`, among those a family allows.
    func activation(_ key: String, default def: String, allowed: [String: ModelConfig.Activation]) throws -> ModelConfig.Activation {
        let name = try string(key, def)
        guard let a = allowed[name] else {
            throw ModelError.invalidConfig("\(path): \(key) '\(name)' is not supported (supported: \(allowed.keys.sorted().joined(separator: ", ")))")
        }
        return a
    }

    /// A positive epsilon.
    func epsilon(_ key: String, _ def: Double) throws -> Float {
        let e = try double(key, def)
        guard e > 0 else { throw ModelError.invalidConfig("\(path): \(key) must be positive, found \(e)") }
        return Float(e)
    }

    /// The first EOS id (`eos_token_id` may be one id or a list).
    func eosToken() -> Int? {
        if let i = json["eos_token_id"].flatMap(Self.integer) { return i }
        if let a = json["eos_token_id"] as? [Any] { return a.first.flatMap(Self.integer) }
        return nil
    }

    /// Which layers use sliding-window attention: `layer_types` when given, else every layer when
    /// `sliding_window` is set (Mistral), or `pattern(l)` when the family derives the types (Gemma 3).
    func attentionLayers(layers: Int, enabled: Bool = true,
                         derive: ((Int) -> ModelConfig.AttentionKind)? = nil) throws -> (window: Int?, types: [ModelConfig.AttentionKind]?) {
        var window = try optionalInt("sliding_window")
        if !enabled { window = nil }
        var types: [ModelConfig.AttentionKind]? = nil
        if let names = try strings("layer_types") {
            guard names.count == layers else {
                throw ModelError.invalidConfig("\(path): layer_types has \(names.count) entries for \(layers) layers")
            }
            types = try names.map { n in
                guard let k = ModelConfig.AttentionKind(rawValue: n) else {
                    throw ModelError.invalidConfig("\(path): layer type '\(n)' is not supported (supported: full_attention, sliding_attention)")
                }
                return k
            }
        } else if let derive, window != nil {
            types = (0..<layers).map(derive)
        }
        if let t = types, t.contains(.sliding), window == nil {
            throw ModelError.invalidConfig("\(path): layer_types names sliding_attention layers but sliding_window is \(enabled ? "not set" : "disabled")")
        }
        if let t = types, !t.contains(.sliding) { return (nil, nil) }
        return (window, types)
    }
}
