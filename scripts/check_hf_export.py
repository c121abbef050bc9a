"""Loads a folder written by `loupe edit --out` (or HuggingFaceExport) with transformers, as a user would:
prints the prompt's token ids, the top-5 next tokens and a greedy continuation, to compare with
`loupe run --model DIR --prompt ...` and `loupe generate`. Run with the peer's python:
  $PY scripts/check_hf_export.py eiffel-rome ["prompt"]"""
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
p = sys.argv[2] if len(sys.argv) > 2 else "The Eiffel Tower is located in the city of"
ids = tok(p, return_tensors="pt").input_ids
print("ids", ids.tolist())
with torch.no_grad():
    logits = model(ids).logits[0, -1]
probs = logits.softmax(-1)
top = probs.topk(5)
print([(tok.decode([int(i)]), round(float(v), 5)) for v, i in zip(top.values, top.indices)])
print("logits[:5]", logits[:5].tolist())
out = model.generate(ids, max_new_tokens=12, do_sample=False)
print(repr(tok.decode(out[0][ids.shape[1]:])))
