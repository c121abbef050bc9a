"""Reference numbers for SmolLM2-135M (the real Q4_1 GGUF) from ../shared/reference/np_llama_gguf.py, the
numpy forward pass with the `gguf` package's dequantizers. Run with the peer's python:
    $PY scripts/make_smollm2_fixtures.py ~/.cache/loupe/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
Writes Tests/Fixtures/smollm2-reference.safetensors (per prompt: token ids, last-position logits, and the
last position's residual stream after every layer) and Tests/Fixtures/smollm2-reference.json."""
import json, os, sys
import numpy as np
from safetensors.numpy import save_file
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared"))
gguf_path = sys.argv[1]
sys.argv = [sys.argv[0], gguf_path]                     # the reference reads its model path from argv at import
sys.path.insert(0, os.path.join(shared, "reference"))
import np_llama_gguf as ref

def forward_with_resids(ids):
    T = len(ids); x = ref.W["token_embd.weight"][ids]; pos = np.arange(T, dtype=np.float64)
    mask = np.triu(np.full((T, T), -np.inf), 1); resids = []
    W, nH, nKV, hd, d = ref.W, ref.nH, ref.nKV, ref.hd, ref.d
    for l in range(ref.nL):
        p = f"blk.{l}."
        h = ref.rms(x, W[p + "attn_norm.weight"])
        q = ref.rope((h @ W[p + "attn_q.weight"].T).reshape(T, nH, hd), pos)
        k = ref.rope((h @ W[p + "attn_k.weight"].T).reshape(T, nKV, hd), pos)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, nKV, hd)
        k, v = np.repeat(k, nH // nKV, axis=1), np.repeat(v, nH // nKV, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True)); att /= att.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", att, v).reshape(T, d) @ W[p + "attn_output.weight"].T
        h = ref.rms(x, W[p + "ffn_norm.weight"])
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "ffn_down.weight"].T
        resids.append(x[-1].copy())
    logits = ref.rms(x, W["output_norm.weight"]) @ W.get("output.weight", W["token_embd.weight"]).T
    return logits, np.stack(resids)

prompts = ["The Eiffel Tower is located in the city of",
           "In 1492, Columbus sailed across the Atlantic Ocean and reached",
           "def fibonacci(n):\n    if n < 2:\n        return n\n    return"]
out, meta = {}, {"prompts": prompts, "ids": []}
for i, p in enumerate(prompts):
    ids = ref.encode(p)
    logits, resids = forward_with_resids(ids)
    out[f"p{i}.last_logits"] = logits[-1].astype(np.float32)
    out[f"p{i}.resid_post_last"] = resids.astype(np.float32)     # [n_layers, d_model]
    meta["ids"].append(ids)
    print(p[:40], len(ids), "tokens; top:", ref.decode([int(np.argmax(logits[-1]))]))
save_file(out, os.path.join(root, "Tests", "Fixtures", "smollm2-reference.safetensors"))
json.dump(meta, open(os.path.join(root, "Tests", "Fixtures", "smollm2-reference.json"), "w"), indent=1)
