"""Makes the committed GPT-2 test fixtures under Tests/Fixtures/ with the peer (PyTorch, transformers,
TransformerLens 3.9) and the numpy reference. Run once with the peer's python:
    PY=$(../shared/peer/setup.sh | tail -1); $PY scripts/make_fixtures.py
Writes:
  Tests/Fixtures/gpt2-tiny/{config.json,model.safetensors}   a random 2-layer GPT-2 in the exact HF format,
      weights stored as F16 (every value exactly representable, so the F32 copy the peer runs is identical)
  Tests/Fixtures/gpt2-tiny-expected.safetensors             what the peer and numpy compute on it
      (logits as their first 1024 columns, `.head`, and each row's logsumexp, `.lse`)
  Tests/Fixtures/gpt2-tiny-expected.json                    token lists and generated ids
"""
import json, os, sys, tempfile
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file, load_file
from transformers import GPT2Config, GPT2LMHeadModel

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared"))
sys.path.insert(0, os.path.join(shared, "peer")); sys.path.insert(0, os.path.join(shared, "reference"))
from tl_load import load_hf, load_tl
import np_gpt2

fx = os.path.join(root, "Tests", "Fixtures"); out_dir = os.path.join(fx, "gpt2-tiny")
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)
cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=50257, n_positions=64, n_ctx=64,
                 bos_token_id=50256, eos_token_id=50256)
hf = GPT2LMHeadModel(cfg).eval()
with torch.no_grad():   # round to half precision so the F16 file and the F32 copy hold the same numbers;
    for p in hf.parameters():   # larger biases and LN params than the zero/one defaults, to exercise them
        p.copy_(p.half().float())
    for n, p in hf.named_parameters():
        if n.endswith("bias") or "ln" in n:
            p.copy_((p + 0.1 * torch.randn_like(p)).half().float())
tmp = tempfile.mkdtemp()
hf.save_pretrained(tmp, safe_serialization=True)            # F32 copy for the peer
sd = load_file(os.path.join(tmp, "model.safetensors"))
save_file({k: v.astype(np.float16) for k, v in sd.items()}, os.path.join(out_dir, "model.safetensors"),
          metadata={"format": "pt"})
c = json.load(open(os.path.join(tmp, "config.json")))
c.pop("torch_dtype", None); c.pop("dtype", None)
json.dump(c, open(os.path.join(out_dir, "config.json"), "w"), indent=2)

V = 50257
ids16 = [(i * 7919 + 1) % V for i in range(16)]
ids8 = [464, 3290, 318, 257, 1263, 3332, 11, 290]
exp, meta = {}, {"ids16": ids16, "ids8": ids8}

# Logits: numpy reference on the F16 file, Hugging Face on the F32 copy.
W = np_gpt2.load_safetensors(os.path.join(out_dir, "model.safetensors"))
ref = np.stack([np_gpt2.gpt2_logits(np.array(ids16[:t]), W, 4)[-1] for t in range(1, 17)])   # last-position rows
full = np_gpt2.gpt2_logits(np.array(ids16), W, 4)
hf = load_hf(tmp)
with torch.no_grad():
    hf_logits = hf(torch.tensor([ids16])).logits[0].numpy()
print("numpy vs HF max diff:", np.abs(full - hf_logits).max())
exp["np.logits16"] = full.astype(np.float32)

# TransformerLens caches, unprocessed and processed.
for tag, processed in (("tl", False), ("tlp", True)):
    tl = load_tl(tmp, processed=processed)
    tl.cfg.use_attn_result = True
    with torch.no_grad():
        logits, cache = tl.run_with_cache(torch.tensor([ids8]))
    for k, v in cache.items():
        exp[f"{tag}.{k}"] = v.numpy().astype(np.float32)
    exp[f"{tag}.logits"] = logits.numpy().astype(np.float32)
    tl.cfg.use_attn_result = False
    if not processed:
        # Intervention: replace blocks.1.hook_resid_pre at position 3 with 2x its value.
        def hook(act, hook):
            act[:, 3, :] = act[:, 3, :] * 2.0
            return act
        with torch.no_grad():
            exp["tl.patched_logits"] = tl.run_with_hooks(torch.tensor([ids8]),
                fwd_hooks=[("blocks.1.hook_resid_pre", hook)]).numpy()
            # stop_at_layer returns the residual stream entering that block.
            exp["tl.stop_at_1"] = tl(torch.tensor([ids8]), stop_at_layer=1).numpy()
            # Left-padded batch with an attention mask.
            tl.tokenizer = None
            tl.cfg.default_prepend_bos = False
            tokens = torch.tensor([[0, 0, 0] + ids8[:5], ids8])
            mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [1] * 8])
            tl.cfg.padding_side = "left"
            exp["tl.padded_logits"] = tl(tokens, attention_mask=mask).numpy()
            meta["padded_tokens"] = tokens.tolist(); meta["padded_mask"] = mask.tolist()
            exp["tl.unpadded_short_logits"] = tl(torch.tensor([ids8[:5]])).numpy()

# Greedy generation with Hugging Face (KV cache).
with torch.no_grad():
    g = hf.generate(torch.tensor([ids8]), max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=V - 1)
meta["greedy12"] = g[0, len(ids8):].tolist()
# Logits over the whole vocabulary would be megabytes: keep the first 1024 columns and each row's
# logsumexp (which every column enters), enough to catch any wrong logit.
for k in [k for k in exp if "logits" in k or k.endswith("unembed.hook_out")]:
    x = exp.pop(k).astype(np.float64)
    exp[k + ".head"] = x[..., :1024].astype(np.float32)
    m = x.max(-1, keepdims=True)
    exp[k + ".lse"] = (m[..., 0] + np.log(np.exp(x - m).sum(-1))).astype(np.float32)
exp = {k: np.ascontiguousarray(v) for k, v in exp.items()}   # safetensors writes raw buffers: views must be made contiguous
save_file(exp, os.path.join(fx, "gpt2-tiny-expected.safetensors"))
json.dump(meta, open(os.path.join(fx, "gpt2-tiny-expected.json"), "w"), indent=1)
print("wrote", len(exp), "tensors;", sum(v.nbytes for v in exp.values()) / 1e6, "MB")
