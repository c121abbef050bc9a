"""A probe dataset: is the last word of an Austen passage inside quoted dialogue?

From Northanger Abbey and Pride and Prejudice (Gutenberg texts in /work/shared/data/corpora/austen), paragraphs that contain
dialogue ("). For a word in such a paragraph, the text is the paragraph from its start up to and including
that word, the position is -1 (its last token), and the label is "inside" when an odd number of quote marks
come before the word in the paragraph, else "outside". Words within 20 characters of a quote mark are
skipped, so that the answer is never just "the previous token is a quote". At most two words per paragraph,
texts of at most 500 characters, classes balanced. Deterministic (seed 0).

    python3 scripts/make_dialogue_probe.py [NOVEL.txt ...] > data/probes/austen-dialogue.jsonl
"""
import json, random, re, sys

austen = "/work/shared/data/corpora/austen/"
paths = sys.argv[1:] or [austen + "northanger-abbey.txt", austen + "pride-and-prejudice.txt"]
per_class = 400
paragraphs = [" ".join(p.split()) for path in paths for p in re.split(r"\n\s*\n", open(path, encoding="utf-8").read())]
rng = random.Random(0)
examples = {"inside": [], "outside": []}
for para in paragraphs:
    if '"' not in para:
        continue
    candidates = {"inside": [], "outside": []}
    for i, m in enumerate(re.finditer(r"[A-Za-z]+", para)):
        start, end = m.span()
        if i < 4 or end > 500 or '"' in para[max(0, start - 20):end + 1]:
            continue
        label = "inside" if para[:start].count('"') % 2 == 1 else "outside"
        candidates[label].append(para[:end])
    for label, texts in candidates.items():
        if texts:
            examples[label].append(rng.choice(texts))
n = min(per_class, *(len(v) for v in examples.values()))
lines = [{"text": t, "label": label, "position": -1} for label in ("inside", "outside") for t in rng.sample(examples[label], n)]
rng.shuffle(lines)
for line in lines:
    print(json.dumps(line, ensure_ascii=False))
print(f"{len(lines)} examples ({n} per class) from {', '.join(paths)}", file=sys.stderr)
