// Models written back as Hugging Face folders — `config.json`, `model.safetensors` (float32) and the
// tokenizer files — that `transformers`' `AutoModelForCausalLM.from_pretrained` and Loupe both load: GPT-2
// (`GPT2LMHeadModel`) and Llama (`LlamaForCausalLM`) shapes, whatever file the model came from (an edited
// GGUF model is written with its q/k rows put back in Hugging Face's rotate-half order, and a
// `tokenizer.json` made from the GGUF vocabulary). The inverse of GPT2.swift and HFDecoder's Llama layout.

import Foundation
import LoupeFormats
import LoupeTensor

public enum HuggingFaceExport {
    /// The Hugging Face class a model is written as.
    public enum Family: String, Sendable { case gpt2 = "GPT2LMHeadModel", llama = "LlamaForCausalLM" }

    /// The class `model` can be written as.
    /// - Throws: `ModelError.unsupported` saying what the class cannot express (a post-MLP norm, biases
    ///   Llama has not, rope scaling, …).
    public static func family(of model: HookedTransformer) throws -> Family {
        let c = model.config
        func no(_ why: String) -> ModelError {
            .unsupported("this \(c.architecture) model cannot be written as a Hugging Face GPT-2 or Llama folder: \(why)")
        }
        if c.postLayerNorm || c.bidirectional { throw no("it is a BERT-style encoder") }
        if c.attnOnly || c.dMLP == 0 { throw no("it has no MLPs") }
        if c.qkNorm || c.postNorms { throw no("it has q/k norms or post-attention/MLP norms") }
        if c.parallelAttnMLP { throw no("attention and MLP run in parallel") }
        if c.slidingWindow != nil || c.layerTypes != nil { throw no("it uses sliding-window attention") }
        if let s = c.attnScale, abs(s - 1 / Float(c.dHead).squareRoot()) > 1e-7 { throw no("attention scores are scaled by \(s), not 1/√d_head") }
        let w = model.weights
        let zeroBU = w.bU.scalars.allSatisfy { $0 == 0 }
        switch (c.normalization, c.positional, c.gatedMLP) {
        case (.layerNorm, .standard, false):
            guard c.nKeyValueHeads == c.nHeads, c.nHeads * c.dHead == c.dModel else { throw no("GPT-2 needs n_heads · d_head = d_model and no grouped keys") }
            guard w.wPos != nil else { throw no("it has no position embedding") }
            guard zeroBU else { throw no("its unembedding has a bias (GPT-2's lm_head has none)") }
            return .gpt2
        case (.rmsNorm, .rotaryHalf, true), (.rmsNorm, .rotaryInterleaved, true):
            guard c.activation == .silu else { throw no("its gated MLP uses \(c.activation), Llama's uses SiLU") }
            guard c.ropeScaling == nil, c.rotatedDims == c.dHead else { throw no("it scales or rotates only part of its rotary embedding") }
            guard zeroBU else { throw no("its unembedding has a bias") }
            for (l, b) in w.blocks.enumerated() {
                for (name, t) in [("b_Q", b.bQ), ("b_K", b.bK), ("b_V", b.bV), ("b_O", b.bO), ("b_in", b.bIn), ("b_out", b.bOut)]
                where !t.scalars.allSatisfy({ $0 == 0 }) {
                    throw no("block \(l) has a non-zero \(name) (Llama has no biases)")
                }
                if b.ln1W == nil || b.ln2W == nil || b.ln1B != nil || b.ln2B != nil { throw no("block \(l)'s norms are not RMSNorm weights") }
            }
            return .llama
        default:
            throw no("only GPT-2's (LayerNorm, learned positions, plain MLP) and Llama's (RMSNorm, rotary, gated SiLU MLP) shapes are written")
        }
    }

    /// Writes `model` into `directory` (created; files replaced): `config.json`, `model.safetensors` and, from
    /// `tokenizerSource` (the model's folder or GGUF file), the tokenizer files.
    /// - Returns: the family written and the files.
    @discardableResult
    public static func write(_ model: HookedTransformer, to directory: URL, tokenizerSource: String?) throws -> (Family, [URL]) {
        let family = try family(of: model)
        let files = try tokenizerSource.map { try tokenizerFiles(from: $0, model: model) } ?? []
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FileError.unwritable(path: directory.path, reason: error.localizedDescription)
        }
        let (config, tensors) = family == .gpt2 ? try gpt2(model) : try llama(model)
        var urls: [URL] = []
        let configURL = directory.appendingPathComponent("config.json")
        try writeAtomically(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]), to: configURL)
        urls.append(configURL)
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        try writeSafetensors(tensors, metadata: ["format": "pt"], to: weightsURL)
        urls.append(weightsURL)
        for (name, data) in files {
            let url = directory.appendingPathComponent(name)
            try writeAtomically(data, to: url)
            urls.append(url)
        }
        return (family, urls)
    }

    /// Whether W_U is exactly W_Eᵀ.
    static func tied(_ w: TransformerWeights, _ c: ModelConfig) -> Bool {
        let (v, d) = (c.dVocab, c.dModel)
        guard w.wU.shape == [d, v], w.wE.shape == [v, d] else { return false }
        let e = w.wE.scalars, u = w.wU.scalars
        for i in 0..<v { for j in 0..<d where e[i * d + j] != u[j * v + i] { return false } }
        return true
    }

    static func transposed(_ t: Tensor) -> Tensor {
        let (r, k) = (t.shape[0], t.shape[1])
        var out = [Float](repeating: 0, count: r * k)
        let s = t.scalars
        for i in 0..<r { for j in 0..<k { out[j * r + i] = s[i * k + j] } }
        return Tensor(unchecked: [k, r], out)
    }

    /// `[heads, d_model, d_head]` → Hugging Face's `[heads · d_head, d_model]`; `interleaved` puts each head's
    /// adjacent rotary pairs (2i, 2i+1) back as halves (i, i + d_head/2).
    static func headsOut(_ w: Tensor, interleaved: Bool) -> Tensor {
        let (h, d, dh) = (w.shape[0], w.shape[1], w.shape[2])
        let s = w.scalars
        var out = [Float](repeating: 0, count: h * dh * d)
        for head in 0..<h {
            for j in 0..<dh {
                // Row j of the head in Hugging Face's order comes from column `src` of ours.
                let src = interleaved ? (j < dh / 2 ? 2 * j : 2 * (j - dh / 2) + 1) : j
                for i in 0..<d { out[(head * dh + j) * d + i] = s[(head * d + i) * dh + src] }
            }
        }
        return Tensor(unchecked: [h * dh, d], out)
    }

    static func common(_ c: ModelConfig, _ model: HookedTransformer, tied: Bool) -> [String: Any] {
        var j: [String: Any] = ["vocab_size": c.dVocab, "tie_word_embeddings": tied, "torch_dtype": "float32"]
        if let t = model.tokenizer {
            if let b = t.bosID { j["bos_token_id"] = b }
            if let e = t.eosID ?? c.eosTokenID { j["eos_token_id"] = e }
        } else if let e = c.eosTokenID { j["eos_token_id"] = e }
        return j
    }

    static func gpt2(_ model: HookedTransformer) throws -> ([String: Any], [(name: String, tensor: Tensor)]) {
        let c = model.config, w = model.weights
        let (d, h, dh) = (c.dModel, c.nHeads, c.dHead)
        let isTied = tied(w, c)
        var j = common(c, model, tied: isTied)
        let act: String
        switch c.activation {
        case .geluNew: act = "gelu_new"
        case .gelu: act = "gelu"
        case .relu: act = "relu"
        case .silu: act = "silu"
        }
        j.merge(["architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": d, "n_head": h, "n_layer": c.nLayers,
                 "n_inner": c.dMLP, "n_positions": c.nCtx, "n_ctx": c.nCtx, "layer_norm_epsilon": Double(c.eps),
                 "activation_function": act, "scale_attn_weights": true]) { $1 }
        var t: [(name: String, tensor: Tensor)] = [("transformer.wte.weight", w.wE)]
        if let pos = w.wPos { t.append(("transformer.wpe.weight", pos)) }
        func packed(_ m: Tensor) throws -> [Float] { try m.permuted([1, 0, 2]).scalars }   // [h, d, dh] → [d, h·dh]
        for (l, b) in w.blocks.enumerated() {
            let p = "transformer.h.\(l)."
            guard let ln1W = b.ln1W, let ln1B = b.ln1B, let ln2W = b.ln2W, let ln2B = b.ln2B else {
                throw ModelError.unsupported("block \(l) has no LayerNorm weights and biases; GPT-2's has both")
            }
            let q = try packed(b.wQ), k = try packed(b.wK), v = try packed(b.wV)
            var cAttn = [Float](repeating: 0, count: d * 3 * d)
            for i in 0..<d {
                for (which, m) in [q, k, v].enumerated() {
                    for o in 0..<(h * dh) { cAttn[i * 3 * d + which * d + o] = m[i * h * dh + o] }
                }
            }
            t += [(p + "ln_1.weight", ln1W), (p + "ln_1.bias", ln1B),
                  (p + "attn.c_attn.weight", Tensor(unchecked: [d, 3 * d], cAttn)),
                  (p + "attn.c_attn.bias", Tensor(unchecked: [3 * d], b.bQ.scalars + b.bK.scalars + b.bV.scalars)),
                  (p + "attn.c_proj.weight", Tensor(unchecked: [h * dh, d], b.wO.scalars)),
                  (p + "attn.c_proj.bias", b.bO),
                  (p + "ln_2.weight", ln2W), (p + "ln_2.bias", ln2B),
                  (p + "mlp.c_fc.weight", b.wIn), (p + "mlp.c_fc.bias", b.bIn),
                  (p + "mlp.c_proj.weight", b.wOut), (p + "mlp.c_proj.bias", b.bOut)]
        }
        guard let lnfW = w.lnFinalW, let lnfB = w.lnFinalB else {
            throw ModelError.unsupported("the final norm has no LayerNorm weight and bias; GPT-2's has both")
        }
        t += [("transformer.ln_f.weight", lnfW), ("transformer.ln_f.bias", lnfB)]
        if !isTied { t.append(("lm_head.weight", transposed(w.wU))) }
        return (j, t)
    }

    static func llama(_ model: HookedTransformer) throws -> ([String: Any], [(name: String, tensor: Tensor)]) {
        let c = model.config, w = model.weights
        let (d, h, kv, dh) = (c.dModel, c.nHeads, c.nKeyValueHeads, c.dHead)
        let isTied = tied(w, c)
        let interleaved = c.positional == .rotaryInterleaved
        var j = common(c, model, tied: isTied)
        j.merge(["architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d, "intermediate_size": c.dMLP,
                 "num_hidden_layers": c.nLayers, "num_attention_heads": h, "num_key_value_heads": kv, "head_dim": dh,
                 "hidden_act": "silu", "rms_norm_eps": Double(c.eps), "rope_theta": Double(c.rotaryBase),
                 "max_position_embeddings": c.nCtx, "attention_bias": false, "mlp_bias": false]) { $1 }
        var t: [(name: String, tensor: Tensor)] = [("model.embed_tokens.weight", w.wE)]
        for (l, b) in w.blocks.enumerated() {
            let p = "model.layers.\(l)."
            guard let ln1 = b.ln1W, let ln2 = b.ln2W, let gate = b.wGate else {
                throw ModelError.unsupported("block \(l) lacks RMSNorm weights or a gate matrix")
            }
            // W_O [h, dh, d] → o_proj [d, h·dh]: column (head, j) from our row (head, src(j)) — the permutation
            // of q and k does not touch v or W_O, whose d_head index is not rotated.
            t += [(p + "input_layernorm.weight", ln1),
                  (p + "self_attn.q_proj.weight", headsOut(b.wQ, interleaved: interleaved)),
                  (p + "self_attn.k_proj.weight", headsOut(b.wK, interleaved: interleaved)),
                  (p + "self_attn.v_proj.weight", headsOut(b.wV, interleaved: false)),
                  (p + "self_attn.o_proj.weight", transposed(Tensor(unchecked: [h * dh, d], b.wO.scalars))),
                  (p + "post_attention_layernorm.weight", ln2),
                  (p + "mlp.gate_proj.weight", transposed(gate)),
                  (p + "mlp.up_proj.weight", transposed(b.wIn)),
                  (p + "mlp.down_proj.weight", transposed(b.wOut))]
        }
        guard let norm = w.lnFinalW else { throw ModelError.unsupported("the final norm has no weight") }
        t.append(("model.norm.weight", norm))
        if !isTied { t.append(("lm_head.weight", transposed(w.wU))) }
        return (j, t)
    }

    // MARK: - Tokenizer files

    static let tokenizerFileNames = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                                     "merges.txt", "tokenizer.model", "generation_config.json"]

    /// The tokenizer files to write: a folder's own, copied; for a GGUF file, a `tokenizer.json` made from its
    /// vocabulary (byte-level BPE with the GPT-2 or SmolLM pre-tokenizer) and a `tokenizer_config.json`.
    public static func tokenizerFiles(from source: String, model: HookedTransformer) throws -> [(String, Data)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else { throw FileError.notFound(path: source) }
        if isDir.boolValue {
            let folder = URL(fileURLWithPath: source)
            return try tokenizerFileNames.compactMap { name in
                let url = folder.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: url.path) else { return nil }
                return (name, try Data(contentsOf: url))
            }
        }
        let gguf = try GGUFFile(path: source)
        guard gguf.has("tokenizer.ggml.tokens") else { return [] }
        let kind = try gguf.string("tokenizer.ggml.model")
        guard kind == "gpt2" else {
            throw ModelError.unsupported("\(source): writing a tokenizer.json for a '\(kind)' tokenizer is not supported yet (byte-level BPE, 'gpt2', is)")
        }
        let tokens = try gguf.stringArray("tokenizer.ggml.tokens")
        let unknownID = try gguf.optionalInt("tokenizer.ggml.unknown_token_id")
        let json = try TrainedBPE.tokenizerJSON(
            ggufTokens: tokens, merges: try gguf.stringArray("tokenizer.ggml.merges"),
            tokenTypes: gguf.has("tokenizer.ggml.token_type") ? try gguf.intArray("tokenizer.ggml.token_type") : nil,
            preTokenizer: try gguf.optionalString("tokenizer.ggml.pre") ?? "default", unknownID: unknownID)
        let unknown = unknownID.flatMap { tokens.indices.contains($0) ? tokens[$0] : nil }
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config.nCtx,
                                     "add_bos_token": model.tokenizer?.addsBOS ?? false, "clean_up_tokenization_spaces": false]
        if let b = try gguf.optionalInt("tokenizer.ggml.bos_token_id"), tokens.indices.contains(b) { config["bos_token"] = tokens[b] }
        if let e = try gguf.optionalInt("tokenizer.ggml.eos_token_id"), tokens.indices.contains(e) { config["eos_token"] = tokens[e] }
        if let u = unknown { config["unk_token"] = u }
        if let template = try gguf.optionalString("tokenizer.chat_template") { config["chat_template"] = template }
        return [("tokenizer.json", Data(json.utf8)),
                ("tokenizer_config.json", try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]))]
    }
}
