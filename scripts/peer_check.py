"""Checks Loupe against Hugging Face and TransformerLens on a real-format GPT-2 folder (by default the
random GPT-2-small that ../shared/peer/setup.sh builds). Run with the peer's python:
    PY=$(../shared/peer/setup.sh | tail -1)
    swift build -c release && $PY scripts/peer_check.py .build/release/loupe ~/.cache/loupe-peer/gpt2-random
Prints, per check, the largest absolute difference; exits non-zero if any exceeds 1e-4."""
import json, os, subprocess, sys, tempfile
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, torch
from safetensors.numpy import load_file
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.environ.get("LOUPE_SHARED", os.path.join(os.path.dirname(root), "shared")), "peer"))
from tl_load import load_hf, load_tl

loupe, path = sys.argv[1], sys.argv[2]
V = json.load(open(os.path.join(path, "config.json")))["vocab_size"]
def ids(n, salt): return [(i * 7919 + salt) % V for i in range(n)]
tmp = tempfile.mkdtemp()
worst = {}

def diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape: return float("inf")
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    return float(np.where(same_inf, 0, np.abs(a - b)).max())

hf = load_hf(path)
for n in (16, 128, 1024):
    x = ids(n, 1)
    out = os.path.join(tmp, f"logits{n}.npy")
    subprocess.run([loupe, "run", "--model", path, "--ids", ",".join(map(str, x)), "--save-logits", out, "--json"],
                   check=True, stdout=subprocess.DEVNULL)
    with torch.no_grad():
        want = hf(torch.tensor([x])).logits[0].numpy()
    worst[f"logits vs HF, {n} tokens"] = diff(np.load(out), want)
del hf

for processed in (False, True):
    tl = load_tl(path, processed=processed)
    x = ids(128, 1)
    out = os.path.join(tmp, f"cache{int(processed)}.safetensors")
    args = [loupe, "cache", "--model", path, "--ids", ",".join(map(str, x)), "--out", out, "--json"]
    subprocess.run(args + (["--processed"] if processed else []), check=True, stdout=subprocess.DEVNULL)
    ours = load_file(out)
    with torch.no_grad():
        _, cache = tl.run_with_cache(torch.tensor([x]))
    missing = sorted(set(cache.keys()) - set(ours)); extra = sorted(set(ours) - set(cache.keys()))
    if missing or extra: print("hook names differ: missing", missing, "extra", extra); worst["hook names"] = float("inf")
    per_hook = {k: diff(ours[k], cache[k].numpy()) for k in cache.keys() if k in ours}
    k_max = max(per_hook, key=per_hook.get)
    worst[f"cache vs TransformerLens ({'processed' if processed else 'unprocessed'}), {len(per_hook)} hooks, 128 tokens; worst {k_max}"] = per_hook[k_max]
    del tl, cache

bad = False
for k, v in worst.items():
    flag = "ok" if v <= 1e-4 else "FAIL"; bad |= v > 1e-4
    print(f"{flag:4}  {v:.2e}  {k}")
sys.exit(1 if bad else 0)
