"""Fixtures for ROME (`loupe edit`), from an independent implementation: ROME's own algorithm
(github.com/kmeng01/rome, rome/compute_u.py + compute_v.py + rome_main.py) ported line by line onto
Hugging Face `transformers` in float64, run on the random Llama of Tests/Fixtures/llama-tiny.
Run with the peer's python:  $PY scripts/make_rome_fixtures.py

Writes Tests/Fixtures/rome-tiny.safetensors + rome-tiny.json:
- the request (token contexts, subject positions, target, the KL prompt) and the settings;
- C, a random symmetric positive-definite "second moment" of the layer's keys (float64);
- per optimisation pass: loss, nll, kl, decay, P(target); the final delta; k̄, u, r; the edited W_out
  (TransformerLens layout [d_mlp, d_model]) and the edited model's logits on the bare prompt.
And rome-formula.safetensors: random k̄, k, v, v*, C and numpy's u = C⁻¹k̄/‖C⁻¹k̄‖, r = (v* − v)/(k·u)."""
import json, os
import numpy as np, torch
import torch.nn.functional as F
from safetensors.numpy import save_file
from transformers import AutoModelForCausalLM

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fixtures = os.path.join(root, "Tests", "Fixtures")
torch.set_grad_enabled(True)

# --- the closed form alone, numpy ---------------------------------------------------------------
rng = np.random.default_rng(20)
m, d = 12, 7
A = rng.standard_normal((m, 3 * m))
C = A @ A.T / (3 * m) + 0.05 * np.eye(m)
kbar, k = rng.standard_normal(m), rng.standard_normal(m)
v, vstar = rng.standard_normal(d), rng.standard_normal(d)
u = np.linalg.solve(C, kbar); u = u / np.linalg.norm(u)
r = (vstar - v) / (k @ u)
f32 = lambda x: np.asarray(x, dtype=np.float32)
save_file({"C": C, "mean_key": f32(kbar), "key": f32(k), "value": f32(v), "target": f32(vstar),
           "left": f32(u), "right": f32(r)}, os.path.join(fixtures, "rome-formula.safetensors"))

# --- the whole algorithm on a model -------------------------------------------------------------
model = AutoModelForCausalLM.from_pretrained(os.path.join(fixtures, "llama-tiny"), torch_dtype=torch.float64)
model.eval()
for p in model.parameters():
    p.requires_grad_(False)
cfg = model.config
layer, n_layers, V = 0, cfg.num_hidden_layers, cfg.vocab_size
dm, dmlp = cfg.hidden_size, cfg.intermediate_size

rng = np.random.default_rng(21)
prompt = [int(t) for t in rng.integers(3, V, 6)]          # the bare prompt; subject = tokens 1..3
subject_end = 3
contexts = [prompt] + [[int(t) for t in rng.integers(3, V, n)] + prompt for n in (2, 4, 5)]
subject_positions = [subject_end + len(c) - len(prompt) for c in contexts]
target = int(rng.integers(3, V))
kl_prompt = prompt[1:subject_end + 1] + [int(t) for t in rng.integers(3, V, 2)]   # "{subject} is a"
kl_position = subject_end - 1
settings = dict(layer=layer, steps=8, learning_rate=0.05, kl_factor=0.0625, weight_decay=0.00002, clamp_norm_factor=60.0)
A = rng.standard_normal((dmlp, 4 * dmlp))
Cm = A @ A.T / (4 * dmlp) + 0.05 * np.eye(dmlp)

mlp = model.model.layers[layer].mlp
down = mlp.down_proj

def keys_and_out(row, pos):
    got = {}
    h1 = down.register_forward_hook(lambda mod, inp, out: got.update(k=inp[0][0, pos].clone(), v=out[0, pos].clone()))
    with torch.no_grad():
        model(torch.tensor([row]))
    h1.remove()
    return got["k"], got["v"]

# compute_u: keys averaged over the contexts, then C⁻¹ and the norm.
ks = [keys_and_out(c, p)[0] for c, p in zip(contexts, subject_positions)]
kbar = torch.stack(ks).mean(0)
u = torch.linalg.solve(torch.tensor(Cm), kbar)
u = u / u.norm()

# compute_v, as rome/compute_v.py (single-token target, right padding; attention is causal).
rows = contexts + [kl_prompt]
lookups = subject_positions + [kl_position]
width = max(len(r) for r in rows)
padded = torch.tensor([r + [r[-1]] * (width - len(r)) for r in rows])
delta = torch.zeros(dm, dtype=torch.float64, requires_grad=True)
cur_input, target_init = keys_and_out(contexts[0], subject_positions[0])

def edit_output(mod, inp, out):
    out = out.clone()
    for i, idx in enumerate(lookups):
        out[i, idx, :] += delta
    return out

opt = torch.optim.Adam([delta], lr=settings["learning_rate"])
kl_init = None
history = []
handle = mlp.register_forward_hook(edit_output)
for it in range(settings["steps"]):
    opt.zero_grad()
    logits = model(padded).logits
    kl_logits = logits[len(contexts), kl_position][None]
    kl_log_probs = F.log_softmax(kl_logits, dim=1)
    if kl_init is None:
        kl_init = kl_log_probs.detach().clone()
    log_probs = torch.log_softmax(logits, dim=2)
    nll_each = torch.stack([-log_probs[i, len(c) - 1, target] for i, c in enumerate(contexts)])
    nll = nll_each.mean()
    kl = settings["kl_factor"] * F.kl_div(kl_init, kl_log_probs, log_target=True, reduction="batchmean")
    decay = settings["weight_decay"] * (torch.norm(delta) / torch.norm(target_init) ** 2)
    loss = nll + kl + decay
    history.append([loss.item(), nll.item(), kl.item(), decay.item(), torch.exp(-nll_each).mean().item()])
    if loss < 5e-2 or it == settings["steps"] - 1:
        break
    loss.backward()
    opt.step()
    max_norm = settings["clamp_norm_factor"] * target_init.norm()
    if delta.norm() > max_norm:
        with torch.no_grad():
            delta[...] = delta * max_norm / delta.norm()
handle.remove()
print("|v|", target_init.norm().item(), "|delta|", delta.norm().item(), [h[0] for h in history])
target_value = target_init + delta.detach()
right = (target_value - target_init) / torch.dot(cur_input, u)   # cur_output = target_init (the bare prompt)
with torch.no_grad():
    down.weight += torch.outer(right, u)          # HF [d_model, d_mlp]: (u rᵀ)ᵀ
    edited_logits = model(torch.tensor([prompt])).logits[0]
w_out = down.weight.detach().T.contiguous()       # TransformerLens [d_mlp, d_model]

save_file({"C": Cm, "history": f32(history), "delta": f32(delta.detach()), "mean_key": f32(kbar), "left": f32(u),
           "right": f32(right), "target_value": f32(target_value), "w_out": f32(w_out),
           "edited_logits": f32(edited_logits)}, os.path.join(fixtures, "rome-tiny.safetensors"))
json.dump({"model": "llama-tiny", "contexts": contexts, "subject_positions": subject_positions, "target": target,
           "kl_prompt": kl_prompt, "kl_position": kl_position, **settings},
          open(os.path.join(fixtures, "rome-tiny.json"), "w"), indent=1)
print("passes", len(history), "loss", history[0][0], "->", history[-1][0], "P(target)", history[0][4], "->", history[-1][4])

# --- MEMIT (github.com/kmeng01/memit, memit/memit_main.py execute_memit + compute_z + compute_ks) ----------
# A random 4-layer Llama with larger weights than llama-tiny (so that values are not tiny), two facts,
# layers 1 and 2, z at the residual after block 2.
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(3)
mcfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=8, max_position_embeddings=64, initializer_range=0.15,
                   tie_word_embeddings=False, rms_norm_eps=1e-5)
mmodel = LlamaForCausalLM(mcfg).to(torch.float32)
mdir = os.path.join(fixtures, "memit-llama")
mmodel.save_pretrained(mdir, safe_serialization=True)
mmodel = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float64)
mmodel.eval()
for p in mmodel.parameters():
    p.requires_grad_(False)
layers, zl, V, dm, dmlp = [1, 2], 2, 128, 32, 48
msettings = dict(layers=layers, steps=6, learning_rate=0.1, kl_factor=0.0625, weight_decay=0.01, clamp_norm_factor=0.75,
                 covariance_weight=2.0)
rng = np.random.default_rng(31)
requests = []
for f in range(2):
    prompt = [int(t) for t in rng.integers(3, V, 6)]
    ctxs = [prompt] + [[int(t) for t in rng.integers(3, V, n)] + prompt for n in (2, 3, 4)]
    requests.append(dict(contexts=ctxs, subject_positions=[2 + len(c) - len(prompt) for c in ctxs],
                         target=int(rng.integers(3, V)), kl_prompt=prompt[1:3] + [int(t) for t in rng.integers(3, V, 2)],
                         kl_position=1))
Cs = {}
for l in layers:
    A = rng.standard_normal((dmlp, 4 * dmlp))
    Cs[l] = A @ A.T / (4 * dmlp) + 0.05 * np.eye(dmlp)

def layer_out(model, l, row, pos):
    got = {}
    def grab(mod, inp, out):
        got["h"] = (out[0] if isinstance(out, tuple) else out)[0, pos].clone()
    h = model.model.layers[l].register_forward_hook(grab)
    with torch.no_grad():
        model(torch.tensor([row]))
    h.remove()
    return got["h"]

def key(model, l, row, pos):
    got = {}
    h = model.model.layers[l].mlp.down_proj.register_forward_hook(lambda mod, inp, out: got.update(k=inp[0][0, pos].clone()))
    with torch.no_grad():
        model(torch.tensor([row]))
    h.remove()
    return got["k"]

def compute_z(model, req):
    ctxs, lookups = req["contexts"] + [req["kl_prompt"]], req["subject_positions"] + [req["kl_position"]]
    width = max(len(r) for r in ctxs)
    padded = torch.tensor([r + [r[-1]] * (width - len(r)) for r in ctxs])
    target_init = layer_out(model, zl, req["contexts"][0], req["subject_positions"][0])
    delta = torch.zeros(dm, dtype=torch.float64, requires_grad=True)
    def edit(mod, inp, out):
        hs = (out[0] if isinstance(out, tuple) else out).clone()
        for i, idx in enumerate(lookups):
            hs[i, idx, :] += delta
        return (hs,) + tuple(out[1:]) if isinstance(out, tuple) else hs
    handle = model.model.layers[zl].register_forward_hook(edit)
    opt = torch.optim.Adam([delta], lr=msettings["learning_rate"])
    kl_init, hist = None, []
    n_rw = len(req["contexts"])
    for it in range(msettings["steps"]):
        opt.zero_grad()
        logits = model(padded).logits
        kl_lp = F.log_softmax(logits[n_rw, req["kl_position"]][None], dim=1)
        if kl_init is None:
            kl_init = kl_lp.detach().clone()
        lp = torch.log_softmax(logits, dim=2)
        nll_each = torch.stack([-lp[i, len(c) - 1, req["target"]] for i, c in enumerate(req["contexts"])])
        nll = nll_each.mean()
        kl = msettings["kl_factor"] * F.kl_div(kl_init, kl_lp, log_target=True, reduction="batchmean")
        decay = msettings["weight_decay"] * (torch.norm(delta) / torch.norm(target_init) ** 2)
        loss = nll + kl + decay
        hist.append([loss.item(), nll.item(), kl.item(), decay.item(), torch.exp(-nll_each).mean().item()])
        if loss < 5e-2 or it == msettings["steps"] - 1:
            break
        loss.backward()
        opt.step()
        max_norm = msettings["clamp_norm_factor"] * target_init.norm()
        if delta.norm() > max_norm:
            with torch.no_grad():
                delta[...] = delta * max_norm / delta.norm()
    handle.remove()
    return target_init + delta.detach(), hist

zs, hists = zip(*[compute_z(mmodel, r) for r in requests])
zs = torch.stack(zs, dim=1)                      # [d, N]
deltas = {}
for i, l in enumerate(layers):
    ks = []
    for r in requests:
        bare = key(mmodel, l, r["contexts"][0], r["subject_positions"][0])
        rest = torch.stack([key(mmodel, l, c, p) for c, p in zip(r["contexts"][1:], r["subject_positions"][1:])]).mean(0)
        ks.append(torch.stack([bare, rest]).mean(0))
    K = torch.stack(ks, dim=1)                   # [m, N]
    cur = torch.stack([layer_out(mmodel, zl, r["contexts"][0], r["subject_positions"][0]) for r in requests], dim=1)
    resid = (zs - cur) / (len(layers) - i)
    adj_k = torch.linalg.solve(msettings["covariance_weight"] * torch.tensor(Cs[l]) + K @ K.T, K)
    upd = resid @ adj_k.T                        # [d, m], HF down_proj's shape
    with torch.no_grad():
        mmodel.model.layers[l].mlp.down_proj.weight += upd
    deltas[l] = upd.T.contiguous()               # TransformerLens [m, d]
with torch.no_grad():
    edited = [mmodel(torch.tensor([r["contexts"][0]])).logits[0, -1] for r in requests]
out = {f"C{l}": Cs[l] for l in layers}
out.update({f"delta{l}": f32(deltas[l]) for l in layers})
out.update({"zs": f32(zs.T.contiguous()), "history0": f32(hists[0]), "history1": f32(hists[1]), "edited_logits": f32(torch.stack(edited))})
save_file(out, os.path.join(fixtures, "memit-llama.safetensors"))
json.dump({"requests": requests, **msettings}, open(os.path.join(fixtures, "memit-llama.json"), "w"), indent=1)
print("MEMIT: P(target) per fact", [h[-1][4] for h in hists], "loss", [h[0][0] for h in hists], "->", [h[-1][0] for h in hists])
