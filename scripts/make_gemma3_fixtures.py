"""Reference numbers for Gemma 3 270M (the real Q4_K_M GGUF Loupe fetches as `gemma3-270m`) from Hugging Face
transformers, which dequantizes the GGUF with the `gguf` package and runs its own Gemma3 forward in float32.
Run with the peer's python (about 2 minutes, most of it loading):
    $PY scripts/make_gemma3_fixtures.py ~/.cache/loupe/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf
Writes Tests/Fixtures/gemma3-270m-reference.json: tokenizer cases (ids with BOS, and the decoded text), and
for each logits prompt the log-sum-exp and the top 32 logits at every position, plus a greedy continuation."""
import json, os, sys
import torch
from transformers import AutoTokenizer, AutoModelForCausalLM

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path = sys.argv[1]
folder, name = os.path.dirname(path), os.path.basename(path)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()

texts = [
    "The Eiffel Tower is located in the city of",
    "Hello world",
    " leading space and  two spaces",
    "tabs\tand\nnewlines\n\n\nthree",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "naïve café — “quotes” and ½ × 3 ≤ 7",
    "日本語のテキストと한국어 그리고 中文。",
    "emoji: 🦜🧪 and rare glyphs 𓀀𓁐 ꙮ",
    "def f(x):\n    return x**2  # square\n",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "e\u0301 (e + combining acute) vs \u00e9 (precomposed)",
    "Numbers 1234567890 and 3.14159, 1,000,000.",
    "   ",
    "a",
]
# Text nobody chose: seeded windows of news and Austen, and seeded soups of characters from many scripts,
# whitespace runs, control tokens and characters the vocabulary lacks.
import random
rng = random.Random(2026)
shared = os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared"))
corpora = [open(os.path.join(shared, f), encoding="utf-8").read() for f in
           ["data/corpora/lee-news.txt", "data/corpora/austen/emma.txt"]]
for _ in range(120):
    c = rng.choice(corpora); n = rng.randint(1, 300); i = rng.randrange(len(c) - n)
    texts.append(c[i:i + n])
alphabet = (" \t\n\r\u00a0\u3000" + "abcXYZ019.,;'\"-_" + "éèñüßøåœ" + "e\u0301a\u0308" + "αβγΩ" + "абвЖ"
            + "日本語中文한국어" + "ـعربي" + "हिन्दी" + "🦜🧪👍🏽" + "\U00013000\u2581\ufeff\u200b")
specials = ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>", "<unk>", "<mask>", "[multimodal]"]
for _ in range(80):
    parts = []
    for _ in range(rng.randint(1, 40)):
        parts.append(rng.choice(specials) if rng.random() < 0.05 else rng.choice(alphabet) * rng.choice([1, 1, 1, 2, 5]))
    texts.append("".join(parts))
cases = []
for t in texts:
    ids = tok(t).input_ids
    cases.append({"text": t, "ids": ids, "decoded": tok.decode(ids[1:])})

logit_prompts = [
    "The Eiffel Tower is located in the city of",
    "Mr. Bennet was so odd a mixture of quick parts, sarcastic humour, reserve, and caprice, that the experience",
]
# Past the 512-token sliding window, where local and global layers differ: 3,000 characters of Austen.
austen = open(os.path.join(shared, "data/corpora/austen/pride-and-prejudice.txt"), encoding="utf-8").read()
start = austen.index("Chapter 3")
logit_prompts.append(austen[start:start + 3000])
K = 32
out = []
for p in logit_prompts:
    ids = tok(p, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    if ids.shape[1] > 100:
        logits = logits[-8:]                       # the last positions only, to keep the fixture small
    lse = torch.logsumexp(logits, -1)
    top = logits.topk(K, -1)
    out.append({"text": p, "ids": ids[0].tolist(), "first_position": ids.shape[1] - logits.shape[0], "lse": lse.tolist(),
                "top_ids": top.indices.tolist(), "top_logits": top.values.tolist()})
    print(p[:40], ids.shape[1], "tokens; top:", tok.decode(logits[-1].argmax()))

ids = tok(logit_prompts[0], return_tensors="pt").input_ids
with torch.no_grad():
    gen = model.generate(ids, max_new_tokens=10, do_sample=False)
greedy = {"prompt": logit_prompts[0], "ids": gen[0, ids.shape[1]:].tolist()}
print("greedy:", repr(tok.decode(greedy["ids"])))

json.dump({"source": name, "tokenizer": cases, "logits": out, "greedy": greedy},
          open(os.path.join(root, "Tests", "Fixtures", "gemma3-270m-reference.json"), "w"), indent=1, ensure_ascii=False)
