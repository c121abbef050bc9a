"""Makes Tests/Fixtures/added-token-strip-cases.json: how Hugging Face `tokenizers` encodes text around added tokens
with `lstrip` / `rstrip` (RoBERTa's `<mask>` strips left; `loupe train mlm` gives its [MASK] lstrip), on the shipped
austen byte-level BPE with three tokens added after its 4,096: [MASK] (lstrip), <sep> (rstrip), <both> (both).
Run with the peer's python (tokenizers):  ~/.cache/loupe-peer/venv/bin/python scripts/make_added_token_fixtures.py
"""
import json, pathlib
from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parent.parent
base = json.loads((root / "Sources/LoupeModels/Resources/austen-lm/tokenizer.json").read_text())
added = [
    {"id": 4096, "content": "[MASK]", "special": True, "single_word": False, "lstrip": True, "rstrip": False, "normalized": False},
    {"id": 4097, "content": "<sep>", "special": True, "single_word": False, "lstrip": False, "rstrip": True, "normalized": False},
    {"id": 4098, "content": "<both>", "special": True, "single_word": False, "lstrip": True, "rstrip": True, "normalized": False},
]
base["added_tokens"] = base["added_tokens"] + added
tok = Tokenizer.from_str(json.dumps(base))
texts = [
    "It is a truth universally [MASK].",
    "It is a truth universally  \t [MASK], that a single man",
    "[MASK] at the start",
    "  [MASK]  twice [MASK][MASK] ",
    "one<sep>   two <sep>three<sep>",
    "a <both>  b<both>c  <both>",
    "no added tokens here, Mr. Darcy.",
    "mixed [MASK] <sep> [MASK]\n\n<both>\nend",
    "\u00a0[MASK]\u3000<sep>\u2003x",
]
cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
out = {"added_tokens": added, "cases": cases}
(root / "Tests/Fixtures/added-token-strip-cases.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
for c in cases:
    print(repr(c["text"]), c["ids"])
