#!/usr/bin/env python3
"""A plain, slow byte-level BPE trainer: the independent reference for Loupe's `BPETrainer`.

It recounts every pair of every word before each merge (no incremental bookkeeping), so it is easy to check
by reading and far too slow for a whole novel. The rules are the ones `BPETrainer` documents:

- Pre-tokenization: GPT-2's pattern
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`; a merge never crosses a
  piece boundary. Special tokens are cut out of the text first and never trained on.
- Ids: the 256 byte tokens first, in the order of GPT-2's byte alphabet sorted by code point (`!`..`~`,
  `¡`..`¬`, `®`..`ÿ`, then the 68 bytes spelled U+0100.. such as `Ġ` for space): the order of GPT-2's
  `encoder.json`. Each merge that makes a new string takes the next id; a merge whose string is already a
  token reuses its id. Special tokens come last.
- Each step merges the pair with the highest count (a word's count times its occurrences in the word);
  on a tie, the pair with the smallest (left id, right id). Occurrences merge left to right without
  overlap (`aaa` → `aa a`). Training stops when the vocabulary (byte tokens + merged tokens + specials)
  reaches the target size, or when the best count is below `--min-frequency`.

Usage (the peer venv has `regex`; it also has Hugging Face `tokenizers`, used by --compare-hf):

    /root/.cache/loupe-peer/venv/bin/python scripts/bpe_reference.py \\
        --text ../shared/data/corpora/austen/pride-and-prejudice.txt --scalars 20000 \\
        --vocab-size 557 --min-frequency 2 --special '<|endoftext|>' \\
        --out Tests/Fixtures/bpe-reference-merges.json --compare-hf

The fixture holds the parameters and the merges, spelled in the byte alphabet (`["Ġ", "t"]`).

For whole novels the naive trainer is too slow; compare a tokenizer.json written by `loupe train tokenizer`
with Hugging Face's trainer instead (and check that `tokenizers` loads it and round-trips the texts):

    loupe train tokenizer --corpus ../shared/data/corpora/austen/*.txt --vocab-size 8192 --out /tmp/austen-bpe
    /root/.cache/loupe-peer/venv/bin/python scripts/bpe_reference.py --text ../shared/data/corpora/austen/*.txt \
        --vocab-size 8192 --special '<|endoftext|>' --no-reference --loupe-json /tmp/austen-bpe/tokenizer.json
"""

import argparse
import collections
import json
import sys

import regex

GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's `bytes_to_unicode` (encoder.py): byte → the character that spells it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def split_specials(text, specials):
    """The text between occurrences of special tokens (leftmost match, longest first on a tie)."""
    if not specials:
        return [text]
    ordered = sorted(specials, key=lambda s: -len(s))
    segments, start, i = [], 0, 0
    while i < len(text):
        hit = next((s for s in ordered if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        segments.append(text[start:i])
        i += len(hit)
        start = i
    segments.append(text[start:])
    return segments


def train(texts, vocab_size, min_frequency, specials):
    byte_char = bytes_to_unicode()
    alphabet = sorted(byte_char.values())  # GPT-2 encoder.json order
    tokens = list(alphabet)  # id -> spelling
    ids = {t: i for i, t in enumerate(tokens)}
    byte_id = {b: ids[c] for b, c in byte_char.items()}

    counts = collections.Counter()
    for text in texts:
        for segment in split_specials(text, specials):
            for piece in GPT2_PATTERN.findall(segment):
                counts[piece] += 1
    words = [[byte_id[b] for b in piece.encode("utf-8")] for piece in counts]
    freqs = [counts[piece] for piece in counts]

    merges = []
    target = vocab_size - len(specials)
    while len(tokens) < target:
        pairs = collections.Counter()
        for word, freq in zip(words, freqs):
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        (left, right), count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < min_frequency:
            break
        spelling = tokens[left] + tokens[right]
        new = ids.get(spelling)
        if new is None:
            new = len(tokens)
            tokens.append(spelling)
            ids[spelling] = new
        merges.append((tokens[left], tokens[right]))
        for w, word in enumerate(words):
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
                    out.append(new)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[w] = out
    return merges, tokens


def agreement(name, theirs, merges):
    """Reports how a list of merges agrees with `merges`: identical prefix and common merges."""
    theirs, merges = [tuple(m) for m in theirs], [tuple(m) for m in merges]
    prefix = 0
    while prefix < min(len(theirs), len(merges)) and theirs[prefix] == merges[prefix]:
        prefix += 1
    common = len(set(theirs) & set(merges))
    print(f"{name}: {len(theirs)} merges vs {len(merges)}; identical prefix {prefix}; "
          f"same set of merges {common}/{len(merges)}", file=sys.stderr)
    if prefix < min(len(theirs), len(merges)):
        print(f"  first difference at merge {prefix}: {theirs[prefix]} vs {merges[prefix]}", file=sys.stderr)
    return prefix == len(theirs) == len(merges)


def compare_loupe(path, texts, hf_merges):
    """Loupe's tokenizer.json: its merges against HF's; `tokenizers` loads it and decodes what it encodes."""
    from tokenizers import Tokenizer
    with open(path, encoding="utf-8") as f:
        loupe = [tuple(m) for m in json.load(f)["model"]["merges"]]
    agreement("Loupe vs HF tokenizers", loupe, hf_merges)
    tok = Tokenizer.from_file(path)
    ok = all(tok.decode(tok.encode(t).ids) == t for t in texts)
    print(f"HF tokenizers loads {path}: decode(encode(text)) == text for every text: {ok}", file=sys.stderr)


def train_hf(texts, vocab_size, min_frequency, specials):
    """Hugging Face `tokenizers`' ByteLevel BPE merges on the same texts, or None if it is not installed."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError:
        print("HF tokenizers: not installed, no comparison", file=sys.stderr)
        return None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return [tuple(m) if isinstance(m, (list, tuple)) else tuple(m.split(" ")) for m in
            json.loads(tok.to_str())["model"]["merges"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", required=True, nargs="+", help="UTF-8 text files, one text each")
    parser.add_argument("--scalars", type=int, help="keep only the first N code points of each file")
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--special", action="append", default=[])
    parser.add_argument("--out", help="write the fixture JSON here (else print the merges)")
    parser.add_argument("--compare-hf", action="store_true", help="also train HF tokenizers and compare")
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) naive trainer")
    parser.add_argument("--loupe-json", help="a tokenizer.json from `loupe train tokenizer` to compare with HF")
    args = parser.parse_args()

    texts = []
    for path in args.text:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        texts.append(text[: args.scalars] if args.scalars else text)
    merges = None
    if not args.no_reference:
        merges, tokens = train(texts, args.vocab_size, args.min_frequency, args.special)
        print(f"reference: {len(merges)} merges, {len(tokens) + len(args.special)} tokens", file=sys.stderr)
    if args.compare_hf or args.loupe_json:
        hf = train_hf(texts, args.vocab_size, args.min_frequency, args.special)
        if hf is not None and merges is not None:
            agreement("HF tokenizers vs reference", hf, merges)
        if hf is not None and args.loupe_json:
            compare_loupe(args.loupe_json, texts, hf)
    if merges is None:
        return
    if args.out:
        fixture = {
            "source": "scripts/bpe_reference.py",
            "texts": [p.split("/")[-1] for p in args.text],
            "scalars": args.scalars,
            "vocabSize": args.vocab_size,
            "minFrequency": args.min_frequency,
            "specialTokens": args.special,
            "merges": [list(m) for m in merges],
        }
        # One merge per line, so that a diff of the fixture shows which merges changed.
        head = json.dumps({k: v for k, v in fixture.items() if k != "merges"}, ensure_ascii=False, indent=1)
        lines = ",\n".join("  " + json.dumps(m, ensure_ascii=False) for m in fixture["merges"])
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(head[:-2] + ',\n "merges": [\n' + lines + "\n ]\n}\n")
    else:
        for a, b in merges:
            print(a, b)


if __name__ == "__main__":
    main()
