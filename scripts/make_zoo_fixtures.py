"""Makes the committed "model zoo" test fixtures: one tiny random model per supported architecture family, with the
Hugging Face reference outputs and (where TransformerLens 3.9 reproduces Hugging Face) TransformerLens's run_with_cache.
Run once with the peer's python:  PY=$(../shared/peer/setup.sh | tail -1); HF_HUB_OFFLINE=1 $PY scripts/make_zoo_fixtures.py
(or ~/.cache/loupe-peer/venv/bin/python; torch cpu, transformers 5.x, transformer_lens 3.9, safetensors).
Optional arguments: family names to (re)make only those, e.g. `... make_zoo_fixtures.py gemma3 phi3`.

For each family NAME it writes, under Tests/Fixtures/zoo/:
  NAME/{config.json,model.safetensors}   a random float32 model in the exact HF format (save_pretrained, safetensors;
                                         `torch_dtype`/`dtype` stripped from config.json). Norm weights are perturbed
                                         (around 1, or around 0 for Gemma's (1+w) norms) and biases randomized, so that
                                         folding and bias handling are tested.
  NAME-expected.json                     {"ids": [...]}: the 12-token prompt (i*37+5) % 256.
  NAME-expected.safetensors              hf.logits [1,12,vocab]; hf.greedy10 (greedy continuation of ids[:6], 10 tokens,
                                         stored as float32); and, only when TL agrees with HF to 1e-4, tl.logits and every
                                         tl.<hook name> of HookedTransformer.run_with_cache (unprocessed weights:
                                         fold_ln, center_writing_weights, center_unembed, fold_value_biases all False).
Families: llama3 (llama3 rope scaling), mistral (sliding window 4), qwen2 (qkv biases), qwen3 (QK-norm, head_dim !=
hidden/heads), gemma3 (sliding+full layers, two rope bases, query_pre_attn_scalar, (1+w) norms, sqrt(d) embed scale,
tied unembed), pythia (GPT-NeoX, partial rotary, parallel residual), neox-sequential (same, sequential residual),
phi3 (fused qkv/gate_up, partial rotary, sliding window 4).
Each family also prints the final config.json and a few "does this feature matter" checks (logit differences when the
feature is switched off on the same weights)."""
import copy, json, os, shutil, sys, tempfile
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file
import transformers as T
from transformer_lens import HookedTransformer, HookedTransformerConfig
import transformer_lens.loading_from_pretrained as loading
from transformer_lens.pretrained.weight_conversions import convert_gemma_weights

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
zoo = os.path.join(root, "Tests", "Fixtures", "zoo")
ids = [(i * 37 + 5) % 256 for i in range(12)]
TOL = 1e-4
COMMON = dict(vocab_size=256, hidden_size=64, max_position_embeddings=64, initializer_range=0.1)


def strip_and_print(out):
    path = os.path.join(out, "config.json")
    c = json.load(open(path)); c.pop("torch_dtype", None); c.pop("dtype", None)
    json.dump(c, open(path, "w"), indent=2)
    print("config.json:", json.dumps({k: v for k, v in c.items() if k != "transformers_version"}, sort_keys=True))
    return c


def make_hf(name, cls, cfg, seed, gemma_norms=False, embed_mul=1.0):
    out = os.path.join(zoo, name)
    if os.path.isdir(out): shutil.rmtree(out)
    torch.manual_seed(seed)
    hf = cls(cfg).eval()
    with torch.no_grad():
        hf.get_input_embeddings().weight.mul_(embed_mul)
        for n, p in hf.named_parameters():
            if n.endswith(".bias"):            # biases non-zero (q/k/v for Qwen2, everything for NeoX)
                p.copy_(0.1 * torch.randn_like(p))
            elif "norm" in n:                  # norms away from their identity value, so that folding is tested
                p.copy_((0.0 if gemma_norms else 1.0) + 0.2 * torch.randn_like(p))
    hf.save_pretrained(out, safe_serialization=True)
    gen = os.path.join(out, "generation_config.json")
    if os.path.exists(gen): os.remove(gen)
    c = strip_and_print(out)
    hf = cls.from_pretrained(out, attn_implementation="eager", dtype=torch.float32).eval()
    print("model.safetensors:", os.path.getsize(os.path.join(out, "model.safetensors")), "bytes")
    return hf, out, c


def hf_logits(model):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits.numpy()


def variant_diff(cls, out, base_logits, what, edit):
    """Max |logits| difference between the saved model and the same weights under an edited config."""
    c = T.AutoConfig.from_pretrained(out)
    edit(c)
    m = cls.from_pretrained(out, config=c, attn_implementation="eager", dtype=torch.float32).eval()
    d = float(np.abs(hf_logits(m) - base_logits).max())
    print(f"  feature check: logits change by {d:.4g} when {what}")
    return d


def hf_expected(hf):
    exp = {"hf.logits": hf_logits(hf)}
    with torch.no_grad():
        r = hf.generate(torch.tensor([ids[:6]]), max_new_tokens=10, min_new_tokens=10, do_sample=False,
                        pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    g = r.sequences
    exp["hf.greedy10"] = g[0, 6:].numpy().astype(np.float32)
    margin = min(float(t.topk(2).values[0, 0] - t.topk(2).values[0, 1]) for t in r.scores)
    print("  greedy10:", g[0, 6:].tolist(), f"(smallest top1-top2 logit margin {margin:.3g})")
    assert margin > 1e-3, "greedy continuation too close to a tie to be a robust fixture"
    return exp


def tl_cfg_from_converter(out, **overrides):
    """TL's own converter (convert_hf_model_config) on a copy of the folder at a neutral path (TL takes name-based
    branches for paths containing 'llama'/'gemma'), then any overrides."""
    tmp = tempfile.mkdtemp(); dst = os.path.join(tmp, "model"); shutil.copytree(out, dst)
    try:
        cfg = loading.get_pretrained_model_config(dst, fold_ln=False, device="cpu", dtype=torch.float32)
    finally:
        shutil.rmtree(tmp)
    d = cfg.to_dict(); d["tokenizer_name"] = None; d.update(overrides)
    return HookedTransformerConfig.from_dict(d), dst


def tl_run(tcfg, state_dict):
    tl = HookedTransformer(tcfg, tokenizer=None, move_to_device=False)
    tl.load_and_process_state_dict(state_dict, fold_ln=False, center_writing_weights=False,
                                   center_unembed=False, fold_value_biases=False)
    tl.eval()
    with torch.no_grad():
        logits, cache = tl.run_with_cache(torch.tensor([ids]))
    return logits.numpy(), {k: v.numpy() for k, v in cache.items()}


def _convert(hf, tcfg):
    # Same dispatch as loading.get_pretrained_state_dict(..., hf_model=hf), without its name/path resolution.
    from transformer_lens.pretrained import weight_conversions as W
    arch = tcfg.original_architecture
    fn = {"LlamaForCausalLM": W.convert_llama_weights, "MistralForCausalLM": W.convert_mistral_weights,
          "Qwen2ForCausalLM": W.convert_qwen2_weights, "Qwen3ForCausalLM": W.convert_qwen3_weights,
          "GPTNeoXForCausalLM": W.convert_neox_weights, "Phi3ForCausalLM": W.convert_phi3_weights,
          "Gemma3ForCausalLM": convert_gemma_weights}[arch]
    return fn(hf, tcfg)


def add_tl(exp, hf, attempts):
    """attempts: list of (label, tcfg). Stores the first that matches HF within TOL; reports every one tried."""
    for label, tcfg in attempts:
        try:
            logits, cache = tl_run(tcfg, _convert(hf, tcfg))
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"  TL [{label}] failed: {type(e).__name__}: {e}")
            continue
        d = float(np.abs(exp["hf.logits"] - logits).max())
        print(f"  TL [{label}] max |hf.logits - tl.logits| = {d:.3g}")
        if d <= TOL:
            exp["tl.logits"] = logits
            for k, v in cache.items(): exp[f"tl.{k}"] = v
            return label, tcfg, cache
    print("  TL entries NOT stored (no attempt agreed with HF)")
    return None, None, None


def write(name, exp):
    exp = {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in exp.items()}
    save_file(exp, os.path.join(zoo, f"{name}-expected.safetensors"))
    json.dump({"ids": ids}, open(os.path.join(zoo, f"{name}-expected.json"), "w"))
    print(f"  wrote {len(exp)} tensors, {sum(v.nbytes for v in exp.values()) / 1e3:.1f} kB")


LLAMA_LIKE_HOOKS = {"hook_embed", "ln_final.hook_scale", "ln_final.hook_normalized", "unembed.hook_in", "unembed.hook_out"}
LLAMA_BLOCK_HOOKS = {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                     "ln1.hook_scale", "ln1.hook_normalized", "ln2.hook_scale", "ln2.hook_normalized",
                     "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_rot_q", "attn.hook_rot_k",
                     "attn.hook_z", "attn.hook_attn_scores", "attn.hook_pattern", "mlp.hook_pre", "mlp.hook_pre_linear",
                     "mlp.hook_post"}
GPT2_HOOKS = {"hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"}


def report_hooks(cache):
    if cache is None: return
    extra, missing = [], set(LLAMA_BLOCK_HOOKS)
    for k, v in cache.items():
        if k.startswith("blocks.0."):
            h = k[len("blocks.0."):]
            missing.discard(h)
            if h not in LLAMA_BLOCK_HOOKS: extra.append(f"blocks.L.{h} {list(v.shape)}")
        elif not k.startswith("blocks.") and k not in LLAMA_LIKE_HOOKS | GPT2_HOOKS:
            extra.append(f"{k} {list(v.shape)}")
    print("  TL hooks beyond GPT-2/Llama:", extra or "none")
    print("  Llama block hooks absent here:", sorted(missing) or "none")


# ---------------------------------------------------------------------------------------------------------------------
def fam_llama3():
    rope = dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                original_max_position_embeddings=16)
    cfg = T.LlamaConfig(**COMMON, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, rms_norm_eps=1e-5, rope_parameters=rope, tie_word_embeddings=False,
                        bos_token_id=1, eos_token_id=2)
    hf, out, c = make_hf("llama3", T.LlamaForCausalLM, cfg, 1)
    rp = c["rope_parameters"]
    assert rp["rope_type"] == "llama3" and rp["rope_theta"] == 500000 and rp["original_max_position_embeddings"] == 16, rp
    exp = hf_expected(hf)
    d = variant_diff(T.LlamaForCausalLM, out, exp["hf.logits"], "rope_type is 'default' (no llama3 scaling)",
                     lambda c: setattr(c, "rope_parameters", {"rope_type": "default", "rope_theta": 500000.0}))
    assert d > 1e-3
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: use_NTK_by_parts_rope =", conv.use_NTK_by_parts_rope, "rotary_base =", conv.rotary_base,
          "NTK_original_ctx_len =", conv.NTK_original_ctx_len, "factor =", conv.NTK_by_parts_factor)
    hand = HookedTransformerConfig(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=96, d_vocab=256, n_ctx=64,
        act_fn="silu", normalization_type="RMS", eps=1e-5, positional_embedding_type="rotary",
        rotary_adjacent_pairs=False, rotary_dim=16, rotary_base=500000.0, final_rms=True, gated_mlp=True,
        n_key_value_heads=2, use_NTK_by_parts_rope=True, NTK_original_ctx_len=16, NTK_by_parts_factor=8.0,
        NTK_by_parts_low_freq_factor=1.0, NTK_by_parts_high_freq_factor=4.0,
        original_architecture="LlamaForCausalLM", device="cpu", dtype=torch.float32)
    return exp, hf, [("TL converter", conv), ("hand-built cfg with NTK-by-parts", hand)]


def fam_mistral():
    cfg = T.MistralConfig(**COMMON, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, sliding_window=4,
                          tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    hf, out, c = make_hf("mistral", T.MistralForCausalLM, cfg, 2)
    exp = hf_expected(hf)
    d = variant_diff(T.MistralForCausalLM, out, exp["hf.logits"], "sliding_window is None",
                     lambda c: setattr(c, "sliding_window", None))
    assert d > 1e-3
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: use_local_attn =", conv.use_local_attn, "window_size =", conv.window_size,
          "attn_types =", conv.attn_types, "rotary_dim =", conv.rotary_dim)
    return exp, hf, [("TL converter", conv)]


def fam_qwen2():
    cfg = T.Qwen2Config(**COMMON, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default",
                        "rope_theta": 1000000.0}, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    hf, out, c = make_hf("qwen2", T.Qwen2ForCausalLM, cfg, 3)
    b = hf.model.layers[0].self_attn.q_proj.bias
    print("  q_proj.bias |mean|:", float(b.detach().abs().mean()))
    exp = hf_expected(hf)
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: rotary_base =", conv.rotary_base, "n_key_value_heads =", conv.n_key_value_heads)
    return exp, hf, [("TL converter", conv)]


def fam_qwen3():
    cfg = T.Qwen3Config(**COMMON, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-6, rope_parameters={
                        "rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=False,
                        bos_token_id=1, eos_token_id=2)
    hf, out, c = make_hf("qwen3", T.Qwen3ForCausalLM, cfg, 4)
    print("  q_norm.weight:", hf.model.layers[0].self_attn.q_norm.weight[:4].tolist())
    exp = hf_expected(hf)
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: d_head =", conv.d_head, "rotary_dim =", conv.rotary_dim, "use_qk_norm =", conv.use_qk_norm)
    return exp, hf, [("TL converter", conv)]


def fam_gemma3():
    cfg = T.Gemma3TextConfig(**COMMON, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                             num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6, sliding_window=4,
                             layer_types=["sliding_attention"] * 3 + ["full_attention"],
                             rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                              "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
                             query_pre_attn_scalar=24, hidden_activation="gelu_pytorch_tanh",
                             tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    # Embeddings scaled down at init: with tied weights and the sqrt(d) input scale, a random model's residual is
    # dominated by the token's own embedding and greedy decoding just repeats the last token.
    hf, out, c = make_hf("gemma3", T.Gemma3ForCausalLM, cfg, 6, gemma_norms=True, embed_mul=0.25)
    exp = hf_expected(hf)
    print("  embed_scale:", float(hf.model.embed_tokens.embed_scale), "tied:",
          hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr())
    M = T.Gemma3ForCausalLM
    variant_diff(M, out, exp["hf.logits"], "sliding_window is 64 (no layer windowed)",
                 lambda c: setattr(c, "sliding_window", 64))
    variant_diff(M, out, exp["hf.logits"], "the sliding layers' rope_theta equals the full layers' (1e6)",
                 lambda c: c.rope_parameters["sliding_attention"].update(rope_theta=1000000.0))
    variant_diff(M, out, exp["hf.logits"], "query_pre_attn_scalar = head_dim (16)",
                 lambda c: setattr(c, "query_pre_attn_scalar", 16))
    attn = ["local" if t == "sliding_attention" else "global" for t in c["layer_types"]]
    hand = HookedTransformerConfig(n_layers=4, d_model=64, n_heads=4, d_head=16, d_mlp=64, d_vocab=256, n_ctx=64,
        act_fn="gelu_pytorch_tanh", normalization_type="RMS", eps=1e-6, positional_embedding_type="rotary",
        rotary_adjacent_pairs=False, rotary_dim=16, rotary_base=1000000.0, rotary_base_local=10000.0,
        use_attn_scale=True, attn_scale=float(np.sqrt(24)), n_key_value_heads=2, gated_mlp=True, final_rms=True,
        use_normalization_before_and_after=True, use_qk_norm=True, window_size=4, use_local_attn=True,
        attn_types=attn, original_architecture="Gemma3ForCausalLM", device="cpu", dtype=torch.float32)
    return exp, hf, [("hand-built cfg (TL has no architecture branch for a local Gemma3 dir)", hand)]


def fam_neox(name, parallel, seed):
    cfg = T.GPTNeoXConfig(**COMMON, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                          rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=parallel, layer_norm_eps=1e-5,
                          hidden_act="gelu", tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    hf, out, c = make_hf(name, T.GPTNeoXForCausalLM, cfg, seed)
    exp = hf_expected(hf)
    variant_diff(T.GPTNeoXForCausalLM, out, exp["hf.logits"], "use_parallel_residual is flipped",
                 lambda c: setattr(c, "use_parallel_residual", not parallel))
    variant_diff(T.GPTNeoXForCausalLM, out, exp["hf.logits"], "partial_rotary_factor is 1.0",
                 lambda c: c.rope_parameters.update(partial_rotary_factor=1.0))
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: rotary_dim =", conv.rotary_dim, "parallel_attn_mlp =", conv.parallel_attn_mlp,
          "rotary_base =", conv.rotary_base)
    return exp, hf, [("TL converter", conv)]


def fam_phi3():
    cfg = T.Phi3Config(**COMMON, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, rms_norm_eps=1e-5, partial_rotary_factor=0.5, sliding_window=4,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
                       original_max_position_embeddings=64, tie_word_embeddings=False,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0)
    hf, out, c = make_hf("phi3", T.Phi3ForCausalLM, cfg, 6)
    exp = hf_expected(hf)
    M = T.Phi3ForCausalLM
    variant_diff(M, out, exp["hf.logits"], "sliding_window is None", lambda c: setattr(c, "sliding_window", None))
    def full_rot(c):
        c.rope_parameters["partial_rotary_factor"] = 1.0; c.partial_rotary_factor = 1.0
    variant_diff(M, out, exp["hf.logits"], "partial_rotary_factor is 1.0", full_rot)
    conv, _ = tl_cfg_from_converter(out)
    print("  TL converter: rotary_dim =", conv.rotary_dim, "window_size =", conv.window_size,
          "use_local_attn =", conv.use_local_attn)
    fixed = HookedTransformerConfig.from_dict({**conv.to_dict(), "rotary_dim": 8})
    return exp, hf, [("TL converter", conv), ("TL converter + rotary_dim=8 (partial_rotary_factor 0.5)", fixed)]


FAMILIES = {"llama3": fam_llama3, "mistral": fam_mistral, "qwen2": fam_qwen2, "qwen3": fam_qwen3,
            "gemma3": fam_gemma3, "pythia": lambda: fam_neox("pythia", True, 7),
            "neox-sequential": lambda: fam_neox("neox-sequential", False, 8), "phi3": fam_phi3}

if __name__ == "__main__":
    os.makedirs(zoo, exist_ok=True)
    for name in (sys.argv[1:] or FAMILIES):
        print(f"=== {name}")
        exp, hf, attempts = FAMILIES[name]()
        label, tcfg, cache = add_tl(exp, hf, attempts)
        if label: print(f"  TL stored from: {label}")
        report_hooks(cache)
        write(name, exp)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(zoo) for f in fs)
    print(f"Tests/Fixtures/zoo total: {total / 1e6:.2f} MB")
