"""Summarizes scripts/bench_gguf.sh's rounds (lines `loupe|llama JSON RSS_KB` on stdin): the best round of each
figure for each side, then the ratios. Usage: ... | python bench_gguf_report.py GGUF THREADS ROUNDS"""
import json, os, sys

best = {"loupe": {}, "llama": {}}
for line in sys.stdin:
    side, rest = line.split(" ", 1)
    obj, rss = rest.rsplit(" ", 1)
    d = json.loads(obj)
    d["rss_mb"] = int(rss) / 1024
    for k, v in d.items():
        if not isinstance(v, (int, float)):
            continue
        lower_is_better = k == "rss_mb" or (k.endswith("_s") and not k.endswith("tok_s"))
        old = best[side].get(k)
        best[side][k] = v if old is None else (min(old, v) if lower_is_better else max(old, v))
o, p = best["loupe"], best["llama"]
size = os.path.getsize(sys.argv[1]) / 2**20
print(f"{os.path.basename(sys.argv[1])} ({size:.0f} MiB), {sys.argv[2]} threads, best of {sys.argv[3]} rounds")
print(f"{'figure':24} {'loupe':>10} {'llama.cpp':>10}  ratio")
for k in ["prompt128_tok_s", "generate64_tok_s", "generate64_hooked_tok_s", "rss_mb"]:
    pk = "generate64_tok_s" if k == "generate64_hooked_tok_s" else k
    if k in o and pk in p:
        note = "  (hooked Loupe vs plain llama.cpp)" if k != pk else ""
        print(f"{k:24} {o[k]:10.1f} {p[pk]:10.1f}  {o[k] / p[pk]:.2f}x{note}")
if "load_s" in o:
    print(f"{'load_s':24} {o['load_s']:10.3f}")
print(f"peak RSS / file size: loupe {o['rss_mb'] / size:.2f}, llama.cpp {p['rss_mb'] / size:.2f}")
