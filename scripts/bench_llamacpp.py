"""llama.cpp's side of scripts/bench_gguf.sh: prompt processing (128 tokens) and greedy generation (64 tokens
after 16) on a GGUF through llama-cpp-python, best of 3, as ../shared/peer/bench_llamacpp.py measures them.
Usage: python bench_llamacpp.py GGUF TEXT_FILE [THREADS]. Prints JSON.

llama.cpp's extra buffer types (weight repacking and the AMX kernels) are turned off: on the machines
here the AMX path crashes in batched decoding (SIGSEGV in ggml_backend_amx_mul_mat, llama-cpp-python
0.3.36, CPUs that report AMX inside a VM), and repacking does not apply to Q4_1 anyway."""
import json, sys, time
import llama_cpp.llama_cpp as C

_defaults = C.llama_model_default_params
def _no_extra_bufts():
    p = _defaults()
    p.use_extra_bufts = False
    return p
C.llama_model_default_params = _no_extra_bufts
from llama_cpp import Llama

threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
m = Llama(model_path=sys.argv[1], n_threads=threads, n_threads_batch=threads, n_ctx=512, n_batch=512, verbose=False)
toks = m.tokenize(open(sys.argv[2]).read()[:20000].encode(), add_bos=False)
p128, g64 = 0.0, 0.0
for _ in range(3):
    m.reset(); t = time.perf_counter(); m.eval(toks[:128]); p128 = max(p128, 128 / (time.perf_counter() - t))
    m.reset(); m.eval(toks[:16]); t = time.perf_counter()
    for _ in range(64):
        nxt = int(m.scores[m.n_tokens - 1].argmax()); m.eval([nxt])
    g64 = max(g64, 64 / (time.perf_counter() - t))
print(json.dumps({"prompt128_tok_s": p128, "generate64_tok_s": g64}))
