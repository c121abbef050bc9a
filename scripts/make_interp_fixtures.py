"""TransformerLens's own analyses on the committed random GPT-2 fixture (Tests/Fixtures/gpt2-tiny), for the
LoupeInterp tests: activation patching (transformer_lens.patching), head detection (head_detector.detect_head),
the logit lens (accumulated_resid + apply_ln_to_stack) and direct logit attribution (stack_head_results +
logit_attrs). Run with the peer's python:  $PY scripts/make_interp_fixtures.py
Writes Tests/Fixtures/gpt2-tiny-interp.safetensors and gpt2-tiny-interp.json (the token ids used)."""
import json, os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file
from transformers import GPT2LMHeadModel
import transformer_lens.loading_from_pretrained as loading
from transformer_lens import HookedTransformer, patching
from transformer_lens.head_detector import detect_head

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fx = os.path.join(root, "Tests", "Fixtures"); path = os.path.join(fx, "gpt2-tiny")
hf = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
cfg = loading.get_pretrained_model_config(path, fold_ln=True, device="cpu")
tl = HookedTransformer(cfg, tokenizer=None, move_to_device=False)
tl.load_and_process_state_dict(loading.get_pretrained_state_dict(path, cfg, hf), fold_ln=True,
                               center_writing_weights=True, center_unembed=True, fold_value_biases=True)
tl.eval()
tl.to_tokens = lambda seq, *args, **kwargs: seq     # detect_head tokenizes its input; ours is token ids already
V = 50257
clean = [(i * 7919 + 1) % V for i in range(12)]
corrupt = [(i * 7919 + 2) % V for i in range(12)]
a, b = clean[-1], corrupt[-1]
rand = [int(x) for x in np.random.default_rng(0).integers(1000, 20000, 7)]
repeated = rand + rand                                     # induction test sequence (14 tokens)
out, meta = {}, {"clean": clean, "corrupt": corrupt, "answer": a, "wrong": b, "repeated": repeated}
with torch.no_grad():
    ct, xt = torch.tensor([clean]), torch.tensor([corrupt])
    _, clean_cache = tl.run_with_cache(ct)
    metric = lambda logits: logits[0, -1, a] - logits[0, -1, b]
    for name in ["resid_pre", "resid_mid", "attn_out", "mlp_out", "attn_head_out_all_pos", "attn_head_out_by_pos",
                 "attn_head_q_all_pos", "attn_head_k_all_pos", "attn_head_v_all_pos", "attn_head_pattern_all_pos",
                 "attn_head_pattern_by_pos", "attn_head_q_by_pos", "attn_head_k_by_pos", "attn_head_v_by_pos"]:
        fn = getattr(patching, f"get_act_patch_{name}")
        out[f"patch.{name}"] = fn(tl, xt, clean_cache, metric).numpy()
    # TransformerLens has no resid_post helper; its generic patcher with the same setter defines it.
    out["patch.resid_post"] = patching.generic_activation_patch(
        tl, xt, clean_cache, metric, patch_setter=patching.layer_pos_patch_setter, activation_name="resid_post",
        index_axis_names=("layer", "pos")).numpy()
    out["patch.clean_metric"] = np.array([float(metric(tl(ct)))], np.float32)
    out["patch.corrupt_metric"] = np.array([float(metric(tl(xt)))], np.float32)

    for kind in ["previous_token_head", "duplicate_token_head", "induction_head"]:
        for mode in ["mul", "abs"]:
            out[f"detect.{kind}.{mode}"] = detect_head(tl, torch.tensor([repeated]), kind, error_measure=mode).numpy()
    out["detect.induction_head.mul.exclude"] = detect_head(tl, torch.tensor([repeated]), "induction_head",
                                                           exclude_bos=True, exclude_current_token=True).numpy()

    logits, cache = tl.run_with_cache(ct)
    for mid in (False, True):
        stack, labels = cache.accumulated_resid(layer=None, incl_mid=mid, apply_ln=True, return_labels=True)
        lens = stack[:, 0] @ tl.W_U + tl.b_U                 # [labels, pos, d_vocab]
        tag = "lens.mid" if mid else "lens"
        out[tag + ".head"] = lens[..., :1024].numpy()
        out[tag + ".lse"] = torch.logsumexp(lens, -1).numpy()
        meta[tag + ".labels"] = labels
    # The same stack with the final norm applied by the run's cached scale (apply_ln_to_stack's default)
    # rather than recomputed per state (what accumulated_resid(apply_ln=True) does in TransformerLens 3.9).
    raw = cache.accumulated_resid(layer=None, incl_mid=False, apply_ln=False)
    cached = cache.apply_ln_to_stack(raw, layer=-1, recompute_ln=False)
    lens = cached[:, 0] @ tl.W_U + tl.b_U
    out["lens.cached.head"] = lens[..., :1024].numpy(); out["lens.cached.lse"] = torch.logsumexp(lens, -1).numpy()
    # logit_attrs applies the final norm's cached scale itself: the stacks go in without it.
    heads, head_labels = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=False, return_labels=True)
    out["dla.heads"] = cache.logit_attrs(heads, tokens=torch.tensor([a]), incorrect_tokens=torch.tensor([b]),
                                         pos_slice=-1).numpy()[:, 0]
    comps, comp_labels = cache.decompose_resid(layer=-1, pos_slice=-1, apply_ln=False, return_labels=True)
    out["dla.components"] = cache.logit_attrs(comps, tokens=torch.tensor([a]), incorrect_tokens=torch.tensor([b]),
                                              pos_slice=-1).numpy()[:, 0]
    meta["dla.head_labels"] = head_labels; meta["dla.component_labels"] = comp_labels
    # Circuits: composition scores, copying scores of the full OV circuits, and a FactoredMatrix's
    # eigenvalues and singular values from numpy on the materialized product.
    for mode in "QKV":
        out[f"comp.{mode.lower()}"] = tl.all_composition_scores(mode).numpy()
    copying = np.zeros((tl.cfg.n_layers, tl.cfg.n_heads), np.float32)
    for l in range(tl.cfg.n_layers):
        for h in range(tl.cfg.n_heads):
            eig = (tl.W_E @ tl.OV[l, h] @ tl.W_U).eigenvalues
            copying[l, h] = float(eig.real.sum() / eig.abs().sum())
    out["circuits.copying"] = copying
    ov = tl.OV[0, 1].AB.numpy().astype(np.float64)
    eig = np.linalg.eigvals(ov); eig = eig[np.argsort(-np.abs(eig))][: tl.cfg.d_head]
    out["circuits.ov01.eig_re"] = eig.real; out["circuits.ov01.eig_im"] = eig.imag
    out["circuits.ov01.sv"] = np.linalg.svd(ov, compute_uv=False)[: tl.cfg.d_head]
    out["circuits.ov01.fro"] = np.array([np.linalg.norm(ov)])
    # Residual PCA with numpy: per position, the states (each block's input, the final output) centred,
    # the first direction's share of the variance, and its top token through W_U (pointed at the final state).
    states = torch.stack([cache[f"blocks.{l}.hook_resid_pre"][0] for l in range(tl.cfg.n_layers)]
                         + [cache[f"blocks.{tl.cfg.n_layers - 1}.hook_resid_post"][0]]).numpy().astype(np.float64)
    explained, tops = [], []
    for p_ in range(states.shape[1]):
        X = states[:, p_] - states[:, p_].mean(0)
        _, sv, vt = np.linalg.svd(X, full_matrices=False)
        direction = vt[0] if vt[0] @ X[-1] > 0 else -vt[0]
        explained.append(sv[0] ** 2 / (sv ** 2).sum()); tops.append(int(np.argmax(direction @ tl.W_U.numpy())))
    out["pca.explained"] = np.array(explained); out["pca.top"] = np.array(tops)
    # TransformerLens's processed weights (from_pretrained defaults); the big embeddings as slices and sums.
    for k, t in tl.state_dict().items():
        if not (k.startswith("blocks.") or k.startswith("embed") or k.startswith("pos_embed") or k.startswith("unembed")): continue
        if k.endswith(("IGNORE", "mask")): continue
        t = t.numpy()
        if k in ("embed.W_E", "unembed.W_U"):
            out[f"state.{k}.slice"] = t[:256] if k == "embed.W_E" else t[:, :256]
            out[f"state.{k}.sum0"] = t.astype(np.float64).sum(0)
            out[f"state.{k}.sum1"] = t.astype(np.float64).sum(1)
        else:
            out[f"state.{k}"] = t
out = {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in out.items()}
save_file(out, os.path.join(fx, "gpt2-tiny-interp.safetensors"))
json.dump(meta, open(os.path.join(fx, "gpt2-tiny-interp.json"), "w"))
print({k: v.shape for k, v in out.items()})
print(sum(v.nbytes for v in out.values()) / 1e6, "MB")
