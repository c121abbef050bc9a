// The Llama family in its two file formats, both read by the generic HFDecoder:
//
// Hugging Face `LlamaForCausalLM` folders (LlamaFamily.swift; PyTorch `nn.Linear` weights are [out, in]):
//   model.embed_tokens.weight [d_vocab, d_model]
//   model.layers.{l}.self_attn.{q,k,v,o}_proj.weight: q [n_heads·d_head, d_model],
//       k/v [n_kv_heads·d_head, d_model], o [d_model, n_heads·d_head]; heads are contiguous row blocks
//   model.layers.{l}.mlp.{gate,up}_proj.weight [d_mlp, d_model], down_proj [d_model, d_mlp]
//   model.layers.{l}.{input,post_attention}_layernorm.weight, model.norm.weight: [d_model] (RMSNorm)
//   lm_head.weight [d_vocab, d_model] (absent when tied to the embedding)
//   Rotary embeddings rotate the first half of each head against the second ("rotate half").
// GGUF llama files (GGUFModel.swift, llama.cpp's converter): token_embd, blk.{l}.attn_{q,k,v,output},
//   blk.{l}.ffn_{gate,up,down}, blk.{l}.{attn,ffn}_norm, output_norm, output (optional) with the same
//   [out, in] matrices once GGUF's fastest-first dimensions are reversed; q and k rows are permuted so that
//   rotary pairs are adjacent (2i, 2i+1) — hence `.rotaryInterleaved` for GGUF and `.rotaryHalf` for
//   Hugging Face weights.

/// The Llama family's GGUF reading (`config(from:)`, `weights(from:config:)`, `quantizedModel(from:config:)`).
public enum Llama {}
