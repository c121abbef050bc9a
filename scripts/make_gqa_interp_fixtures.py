"""TransformerLens's own analyses on the committed random grouped-query-attention Llama fixture
(Tests/Fixtures/llama-tiny: LlamaForCausalLM, 4 query heads, 2 key-value heads, RMSNorm, rotary, vocab 256), for
the LoupeInterp tests: the same analyses, key names and JSON meta layout as scripts/make_interp_fixtures.py does
on gpt2-tiny -- activation patching (transformer_lens.patching), head detection (head_detector.detect_head), the
logit lens (accumulated_resid + apply_ln_to_stack), direct logit attribution (stack_head_results + logit_attrs),
composition scores (all_composition_scores), copying scores and a FactoredMatrix's spectrum, residual PCA, and
TransformerLens's processed weights.
Run with the peer's python:  PY=$(../shared/peer/setup.sh | tail -1); $PY scripts/make_gqa_interp_fixtures.py
Writes Tests/Fixtures/llama-tiny-interp.safetensors and llama-tiny-interp.json (the token ids used).

The weights are processed as from_pretrained would for a Llama: load_and_process_state_dict(fold_ln=True,
center_writing_weights=True, center_unembed=True, fold_value_biases=True). What TransformerLens 3.9 actually does:
  - fold_ln: the RMSNorm gains (ln1.w, ln2.w, ln_final.w) are multiplied into W_Q, _W_K, _W_V, W_in, W_gate and
    W_U (no bias folding, no centering: fold_layer_norm(fold_biases=False, center_weights=False)); the norms become
    RMSPre (no weight) and vanish from the state dict.
  - center_writing_weights: silently skipped (ProcessWeights.process_weights centres only under LN/LNPre without
    final_rms); W_E, W_O and W_out stay uncentred.
  - center_unembed: applied -- W_U has its mean over the vocabulary subtracted (b_U is zero and stays zero).
  - fold_value_biases: runs on the grouped biases _b_V (repeat_interleave'd to the query heads); Llama has none,
    so they are zero and b_O stays zero.
Under grouped-query attention: hook_k / hook_v carry n_key_value_heads (2) heads, so TransformerLens's k and v
patching results index key-value heads ([n_layers, 2] and [n_layers, pos, 2]); q, z and pattern index the 4
query heads. The model's W_K / W_V properties repeat_interleave the 2 stored heads to 4 (shape [2, 4, 64, 16]),
so QK, OV, all_composition_scores ([2, 4, 2, 4]) and the copying scores are per query head. The state dict holds
the grouped blocks.*.attn._W_K / _W_V / _b_K / _b_V ([2, 64, 16], [2, 16]). Llama has no positional embedding, so
decompose_resid has no pos_embed label, and with vocab 256 the ".head" logit slices and the W_E / W_U ".slice"
entries are the whole vocabulary."""
import json, os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file
from transformers import LlamaForCausalLM
from transformer_lens import HookedTransformer, HookedTransformerConfig, patching
from transformer_lens.head_detector import detect_head
from transformer_lens.pretrained.weight_conversions import convert_llama_weights

torch.set_num_threads(1)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fx = os.path.join(root, "Tests", "Fixtures"); path = os.path.join(fx, "llama-tiny")
hf = LlamaForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()
cfg = HookedTransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=96, d_vocab=256, n_ctx=64,
    act_fn="silu", normalization_type="RMS", eps=1e-5, positional_embedding_type="rotary",
    rotary_adjacent_pairs=False, rotary_dim=16, rotary_base=10000, final_rms=True, gated_mlp=True,
    n_key_value_heads=2, original_architecture="LlamaForCausalLM", device="cpu", dtype=torch.float32)
tl = HookedTransformer(cfg, tokenizer=None, move_to_device=False)
tl.load_and_process_state_dict(convert_llama_weights(hf, cfg), fold_ln=True,
                               center_writing_weights=True, center_unembed=True, fold_value_biases=True)
tl.eval()
tl.to_tokens = lambda seq, *args, **kwargs: seq     # detect_head tokenizes its input; ours is token ids already
V = cfg.d_vocab
clean = [(i * 37 + 5) % V for i in range(12)]       # the ids of llama-tiny-expected.json
corrupt = list(clean)
for p_, t_ in ((3, 200), (7, 17), (11, 99)):          # differs at three positions, the last among them
    corrupt[p_] = t_
a, b = 203, 250                                      # answer / wrong: distinct; the largest clean-minus-corrupt gap
rand = [int(x) for x in np.random.default_rng(0).choice(np.arange(3, V), 7, replace=False)]
repeated = rand + rand                                     # induction test sequence (14 tokens)
out, meta = {}, {"clean": clean, "corrupt": corrupt, "answer": a, "wrong": b, "repeated": repeated}
with torch.no_grad():
    ct, xt = torch.tensor([clean]), torch.tensor([corrupt])
    # The processed model still computes what Hugging Face's does (up to the centred unembedding).
    hl, tll = hf(ct).logits, tl(ct)
    print("HF vs TL (log-softmax):", float((hl.log_softmax(-1) - tll.log_softmax(-1)).abs().max()))
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
    print("clean logit diff:", float(out["patch.clean_metric"][0]), " corrupt logit diff:",
          float(out["patch.corrupt_metric"][0]))

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
        out[tag + ".head"] = lens[..., :1024].numpy()       # the whole vocabulary (256) here
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
    # eigenvalues and singular values from numpy on the materialized product. W_K / W_V are the key-value heads
    # repeat_interleave'd to the query heads ([n_layers, n_heads, d_model, d_head]), so all are per query head.
    print("W_Q", tuple(tl.W_Q.shape), "W_K", tuple(tl.W_K.shape), "W_V", tuple(tl.W_V.shape),
          "blocks.0.attn._W_K", tuple(tl.blocks[0].attn._W_K.shape))
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
    # TransformerLens's processed weights (from_pretrained defaults); the embeddings as slices (here whole) and sums.
    # Grouped-query blocks hold attn._W_K / _W_V / _b_K / _b_V with n_key_value_heads heads.
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
save_file(out, os.path.join(fx, "llama-tiny-interp.safetensors"))
json.dump(meta, open(os.path.join(fx, "llama-tiny-interp.json"), "w"))
print({k: v.shape for k, v in out.items()})
print(sum(v.nbytes for v in out.values()) / 1e6, "MB")
