"""Makes the committed random-Llama test fixtures with the peer (PyTorch, transformers, TransformerLens 3.9).
Run once with the peer's python:  PY=$(../shared/peer/setup.sh | tail -1); $PY scripts/make_llama_fixtures.py
Writes Tests/Fixtures/llama-tiny/{config.json,model.safetensors}: a random LlamaForCausalLM in the exact HF
format (grouped-query attention: 4 query heads, 2 key-value heads; untied unembedding), and
Tests/Fixtures/llama-tiny-expected.safetensors: Hugging Face logits and TransformerLens's run_with_cache
(unprocessed, and processed with fold_ln) on the same weights."""
import json, os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_llama_weights

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fx = os.path.join(root, "Tests", "Fixtures"); out = os.path.join(fx, "llama-tiny")
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
hf = LlamaForCausalLM(cfg).eval()
with torch.no_grad():   # norms away from 1, so that folding them is tested
    for n, p in hf.named_parameters():
        if "norm" in n: p.copy_(1 + 0.2 * torch.randn_like(p))
hf.save_pretrained(out, safe_serialization=True)
c = json.load(open(os.path.join(out, "config.json"))); c.pop("torch_dtype", None); c.pop("dtype", None)
json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=2)
hf = LlamaForCausalLM.from_pretrained(out, attn_implementation="eager", torch_dtype=torch.float32).eval()

ids = [(i * 37 + 5) % 256 for i in range(12)]
exp = {}
with torch.no_grad():
    exp["hf.logits"] = hf(torch.tensor([ids])).logits.numpy()
    g = hf.generate(torch.tensor([ids[:6]]), max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0)
exp["hf.greedy10"] = g[0, 6:].numpy().astype(np.float32)

tcfg = HookedTransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=96, d_vocab=256, n_ctx=64,
    act_fn="silu", normalization_type="RMS", eps=1e-5, positional_embedding_type="rotary",
    rotary_adjacent_pairs=False, rotary_dim=16, rotary_base=10000, final_rms=True, gated_mlp=True,
    n_key_value_heads=2, original_architecture="LlamaForCausalLM", device="cpu", dtype=torch.float32)
for tag, fold in (("tl", False), ("tlp", True)):
    tl = HookedTransformer(tcfg, tokenizer=None, move_to_device=False)
    tl.load_and_process_state_dict(convert_llama_weights(hf, tcfg), fold_ln=fold, center_writing_weights=False,
                                   center_unembed=False, fold_value_biases=False)
    tl.eval()
    with torch.no_grad():
        logits, cache = tl.run_with_cache(torch.tensor([ids]))
    exp[f"{tag}.logits"] = logits.numpy()
    for k, v in cache.items(): exp[f"{tag}.{k}"] = v.numpy()
print("HF vs TL logits:", np.abs(exp["hf.logits"] - exp["tl.logits"]).max(), np.abs(exp["hf.logits"] - exp["tlp.logits"]).max())
exp = {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in exp.items()}
save_file(exp, os.path.join(fx, "llama-tiny-expected.safetensors"))
json.dump({"ids": ids}, open(os.path.join(fx, "llama-tiny-expected.json"), "w"))
print("wrote", len(exp), "tensors", sum(v.nbytes for v in exp.values()) / 1e6, "MB")
