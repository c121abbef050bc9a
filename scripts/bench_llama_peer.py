"""The peer's side of the Llama benchmark: a random LlamaForCausalLM shaped like SmolLM2-135M (30 layers,
d_model 576, 9 heads / 3 KV heads, d_mlp 1536, vocab 49152, tied embeddings), Hugging Face transformers on
PyTorch CPU, 2 threads. Saves the model (once) to MODEL_DIR so Loupe runs the same weights; prints JSON.
Usage: $PY scripts/bench_llama_peer.py MODEL_DIR"""
import os, sys, time, json, statistics
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
path = sys.argv[1]
if not os.path.exists(os.path.join(path, "model.safetensors")):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5,
                      rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).eval().save_pretrained(path, safe_serialization=True)
V = 49152
def ids(n, salt): return torch.tensor([[(i * 7919 + salt) % 50257 % V for i in range(n)]])   # as `loupe bench`
def timed(fn, n, warm=1):
    for _ in range(warm): fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
out = {"side": "peer", "torch": torch.__version__, "threads": torch.get_num_threads()}
t = time.perf_counter(); hf = LlamaForCausalLM.from_pretrained(path, attn_implementation="eager", torch_dtype=torch.float32).eval()
out["hf_load_s"] = time.perf_counter() - t
with torch.inference_mode():
    x = ids(128, 1)
    out["hf_forward128_ms"] = 1e3 * timed(lambda: hf(x, use_cache=False), 5)
    p = ids(16, 3)
    s = timed(lambda: hf.generate(p, max_new_tokens=50, min_new_tokens=50, do_sample=False, pad_token_id=0), 3)
    out["hf_generate50_tok_s"] = 50 / s
print(json.dumps(out))
