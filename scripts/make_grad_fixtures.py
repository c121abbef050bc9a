"""Gradient fixtures from PyTorch (float64), for the autograd tests (Tests/LoupeTensorTests/AutogradTests.swift and
Tests/LoupeModelsTests/GradientTests.swift). Run with the peer's python:  $PY scripts/make_grad_fixtures.py

1. Every differentiable op: float32 inputs, a random cotangent R, the output and d(sum(out * R))/d(input) computed in
   float64 by torch from the same float32 inputs.
2. TransformerLens on the committed tiny GPT-2 (Tests/Fixtures/gpt2-tiny), unprocessed weights, float64: the
   next-token loss (return_type="loss") on a batch of two sequences, its gradient for every weight (W_E and W_U only
   on the rows/columns listed, to keep the file small) and at a few hook points.
Writes Tests/Fixtures/grad-ops.safetensors, grad-gpt2-tiny.safetensors and grad-gpt2-tiny.json."""
import json, math, os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
import torch.nn.functional as F
from safetensors.numpy import save_file

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fx = os.path.join(root, "Tests", "Fixtures")
rng = np.random.default_rng(7)
out = {}


def f32(shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32).reshape(shape)


def record(name, fn, inputs, extra=None):
    """inputs: list of float32 arrays (all get gradients). fn maps float64 tensors to the output."""
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    y = fn(*ts)
    cot = f32(tuple(y.shape))
    (y * torch.tensor(cot, dtype=torch.float64)).sum().backward()
    for i, x in enumerate(inputs):
        out[f"{name}.in{i}"] = x
        out[f"{name}.grad{i}"] = ts[i].grad.numpy().astype(np.float32)
    out[f"{name}.cot"] = cot
    out[f"{name}.out"] = np.asarray(y.detach().numpy(), dtype=np.float32).reshape(tuple(y.shape))


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm_core(x, eps=1e-5):
    xc = x - x.mean(-1, keepdim=True)
    return xc / torch.sqrt((xc ** 2).mean(-1, keepdim=True) + eps)


def rms_core(x, eps=1e-6):
    return x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps)


def causal_scores(q, k):   # q [b, p, h, dh], k [b, p, kvh, dh] -> [b, h, p, p]
    h, kvh, dh, p = q.shape[2], k.shape[2], q.shape[3], q.shape[1]
    k = k.repeat_interleave(h // kvh, dim=2)
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
    mask = torch.triu(torch.ones(p, p, dtype=torch.bool), 1)
    return s.masked_fill(mask, 0.0)    # masked entries compared as 0 in the test (the op writes -inf there)


def attention_mix(pattern, v):   # pattern [b, h, p, p], v [b, p, kvh, dh] -> [b, p, h, dh]
    h, kvh = pattern.shape[1], v.shape[2]
    v = v.repeat_interleave(h // kvh, dim=2)
    return torch.einsum("bhqk,bkhd->bqhd", pattern, v)


record("matmul", lambda x, w: x @ w, [f32((2, 3, 5)), f32((5, 4))])
record("add", lambda a, b: a + b, [f32((3, 4)), f32((3, 4))])
record("sub", lambda a, b: a - b, [f32((3, 4)), f32((3, 4))])
record("mul", lambda a, b: a * b, [f32((3, 4)), f32((3, 4))])
record("addrow", lambda x, b: x + b, [f32((2, 3, 4)), f32((4,))])
record("mulrow", lambda x, w: x * w, [f32((2, 3, 4)), f32((4,))])
record("scaled", lambda x: x * 0.37, [f32((3, 4))])
record("sum", lambda x: x.sum().reshape(()), [f32((3, 4))])
record("mean", lambda x: x.mean().reshape(()), [f32((3, 4))])
gidx = [0, 5, 5, 11, 7]
record("gather", lambda x: x.reshape(-1)[gidx], [f32((3, 4))])
record("gelu_tanh", gelu_new, [f32((4, 6), 2.0)])
record("gelu_erf", lambda x: F.gelu(x), [f32((4, 6), 2.0)])
record("relu", F.relu, [f32((4, 6))])
record("silu", F.silu, [f32((4, 6), 2.0)])
record("layernorm", layer_norm_core, [f32((2, 3, 8), 3.0)])
record("rmsnorm", rms_core, [f32((2, 3, 8), 3.0)])
record("softmax", lambda x: torch.softmax(x, -1), [f32((3, 5), 2.0)])
record("permute", lambda x: x.permute(1, 0, 2), [f32((2, 3, 4))])
emb_ids = [3, 0, 3, 6, 1]
record("embedding", lambda t: t[emb_ids], [f32((7, 4))])
ce_targets = [2, -1, 0, 5]
def ce(logits):
    t = torch.tensor(ce_targets)
    keep = t >= 0
    return F.cross_entropy(logits[keep], t[keep]).reshape(())
record("crossentropy", ce, [f32((4, 6), 2.0)])
record("scores", causal_scores, [f32((2, 5, 4, 3)), f32((2, 5, 2, 3))])
pat = torch.softmax(torch.tensor(f32((2, 4, 5, 5))).double().masked_fill(torch.triu(torch.ones(5, 5, dtype=torch.bool), 1), -math.inf), -1)
record("mix", attention_mix, [pat.numpy().astype(np.float32), f32((2, 5, 2, 3))])
meta = {"gather": gidx, "embedding": emb_ids, "crossentropy": ce_targets}
# safetensors writes raw memory: every array must be C-contiguous (permutes, einsums and fancy indexing are not).
save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, os.path.join(fx, "grad-ops.safetensors"))

# 2. TransformerLens, tiny GPT-2, unprocessed, float64.
from transformers import GPT2LMHeadModel
import transformer_lens.loading_from_pretrained as loading
from transformer_lens import HookedTransformer

path = os.path.join(fx, "gpt2-tiny")
hf = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
cfg = loading.get_pretrained_model_config(path, fold_ln=False, device="cpu")
tl = HookedTransformer(cfg, tokenizer=None, move_to_device=False)
tl.load_and_process_state_dict(loading.get_pretrained_state_dict(path, cfg, hf), fold_ln=False,
                               center_writing_weights=False, center_unembed=False, fold_value_biases=False)
tl = tl.to(torch.float64).eval()
V = cfg.d_vocab
tokens = [[(i * 7919 + 1) % V for i in range(10)], [(i * 104729 + 3) % V for i in range(10)]]
hook_names = ["blocks.0.attn.hook_z", "blocks.0.attn.hook_pattern", "blocks.1.hook_resid_mid", "blocks.1.mlp.hook_post",
              "blocks.0.ln1.hook_normalized", "ln_final.hook_normalized", "blocks.1.attn.hook_q"]
acts = {}
def keep(t, hook):
    # TransformerLens runs ln1 once per attention input (query, key, value): a hook point can fire several
    # times, and its gradient is the sum over the firings.
    t.retain_grad()
    acts.setdefault(hook.name, []).append(t)
    return t
loss = tl.run_with_hooks(torch.tensor(tokens), return_type="loss", fwd_hooks=[(n, keep) for n in hook_names])
loss.backward()
g = {"loss": np.array([loss.item()], np.float32)}
used = sorted(set(t for row in tokens for t in row))
cols = sorted(set(used + list(range(0, V, 997))))
for name, p in tl.named_parameters():
    grad = p.grad.numpy()
    if name == "embed.W_E":
        grad = grad[used]
    elif name == "unembed.W_U":
        grad = grad[:, cols]
    elif name == "unembed.b_U":
        grad = grad[cols]
    g["param." + name] = grad.astype(np.float32)
for n in hook_names:
    g["hook." + n] = sum(t.grad for t in acts[n]).numpy().astype(np.float32)
save_file({k: np.ascontiguousarray(v) for k, v in g.items()}, os.path.join(fx, "grad-gpt2-tiny.safetensors"))
meta.update({"tokens": tokens, "W_E_rows": used, "W_U_columns": cols, "hooks": hook_names})
json.dump(meta, open(os.path.join(fx, "grad-gpt2-tiny.json"), "w"))
print("loss", loss.item(), "params", len([k for k in g if k.startswith("param.")]))

# 3. torch.optim.AdamW on one matrix for five steps with given gradients (lr 0.01, betas (0.9, 0.98), eps 1e-8,
#    weight decay 0.1; a constant learning rate, no clipping).
w0 = f32((3, 4))
grads = [f32((3, 4)) for _ in range(5)]
p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
opt = torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
for g in grads:
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
adam = {"w0": w0, "final": p.detach().numpy().astype(np.float32)}
for i, g in enumerate(grads):
    adam[f"grad{i}"] = g
save_file({k: np.ascontiguousarray(v) for k, v in adam.items()}, os.path.join(fx, "grad-adamw.safetensors"))
