// The architectures Loupe opens from Hugging Face folders: one entry per family, each pointing at its
// description (a config reader and a weight layout for the one generic engine). Adding a family is one
// file and one line here (docs/architectures.md).

/// A family of models Loupe can load from a Hugging Face folder.
public struct Architecture: Sendable {
    /// The Hugging Face class, e.g. `Qwen3ForCausalLM`.
    public let hfClass: String
    /// `model_type` values in `config.json`.
    public let modelTypes: [String]
    /// Examples of models of the family.
    public let examples: String
    /// What is particular to it, in a few words.
    public let features: String
    /// Also loadable from GGUF (llama.cpp's arch name), when it is.
    public let gguf: String?
    /// The config and where the weights are, from a folder's config.json.
    let describe: @Sendable (HFConfigReader) throws -> (ModelConfig, DecoderLayout)

    /// Every family, in the order `loupe models` lists them.
    public static let all: [Architecture] = [
        Architecture(hfClass: "GPT2LMHeadModel", modelTypes: ["gpt2"], examples: "GPT-2, DistilGPT-2",
                     features: "LayerNorm, learned positions, GELU MLP", gguf: nil,
                     describe: { r in throw ModelError.unsupported("\(r.path): GPT-2 is read by its own loader") }),
        Architecture(hfClass: "LlamaForCausalLM", modelTypes: ["llama"], examples: "Llama 2/3, SmolLM2, TinyLlama",
                     features: "RMSNorm, rotary (llama3/linear scaling), GQA, SwiGLU", gguf: "llama",
                     describe: { try LlamaFamily.describe($0, variant: .llama) }),
        Architecture(hfClass: "MistralForCausalLM", modelTypes: ["mistral"], examples: "Mistral 7B",
                     features: "Llama block with sliding-window attention", gguf: nil,
                     describe: { try LlamaFamily.describe($0, variant: .mistral) }),
        Architecture(hfClass: "Qwen2ForCausalLM", modelTypes: ["qwen2"], examples: "Qwen2, Qwen2.5",
                     features: "Llama block with q/k/v biases", gguf: nil,
                     describe: { try LlamaFamily.describe($0, variant: .qwen2) }),
        Architecture(hfClass: "Qwen3ForCausalLM", modelTypes: ["qwen3"], examples: "Qwen3",
                     features: "QK-norm, explicit head_dim", gguf: nil,
                     describe: { try LlamaFamily.describe($0, variant: .qwen3) }),
        Architecture(hfClass: "Gemma3ForCausalLM", modelTypes: ["gemma3_text"], examples: "Gemma 3 270M, 1B",
                     features: "(1+w) RMSNorm before and after, QK-norm, GeGLU, local/global layers", gguf: "gemma3",
                     describe: { try Gemma3.describe($0) }),
        Architecture(hfClass: "GPTNeoXForCausalLM", modelTypes: ["gpt_neox"], examples: "Pythia, GPT-NeoX-20B",
                     features: "parallel attention + MLP, partial rotary, LayerNorm with biases", gguf: nil,
                     describe: { try GPTNeoX.describe($0) }),
        Architecture(hfClass: "Phi3ForCausalLM", modelTypes: ["phi3"], examples: "Phi-3 mini, Phi-4 mini",
                     features: "fused qkv and gate_up projections, partial rotary", gguf: nil,
                     describe: { try Phi3.describe($0) }),
        Architecture(hfClass: "BertForMaskedLM", modelTypes: ["bert"], examples: "BERT base/large; BertModel: all-MiniLM-L6-v2",
                     features: "bidirectional encoder, LayerNorm after attention and MLP, token types, MLM head", gguf: nil,
                     describe: { r in throw ModelError.unsupported("\(r.path): BERT is read by its own loader") }),
    ]

    /// The family of a config: by `model_type`, else by the first of `architectures`.
    static func find(modelType: String?, classes: [String]) -> Architecture? {
        if let t = modelType { return all.first { $0.modelTypes.contains(t) } }
        return all.first { a in classes.contains(a.hfClass) }
    }
}
