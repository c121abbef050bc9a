"""Writes a Llama-shaped GGUF with random quantized weights, for memory and speed checks at sizes no pinned
model has (docs/benchmarks.md: "7B on 24 GB"). The tokenizer metadata is copied from a real GGUF
(SmolLM2-135M's, so text prompts work); the weights are random Q4_0 (or Q8_0) blocks with small scales, so
the model is nonsense but runs like a real one.

Usage: python scripts/make_synthetic_gguf.py OUT.gguf TOKENIZER.gguf [--shape 7b|1b] [--type q4_0|q8_0]
Needs the `gguf` and `numpy` packages (the peer venv has both). Streams one tensor at a time."""
import argparse, sys
import numpy as np
import gguf

SHAPES = {   # Llama-2-7B and a 1B-class shape; the vocabulary is the tokenizer file's.
    "7b": dict(layers=32, d=4096, heads=32, kv=32, mlp=11008, ctx=4096),
    "1b": dict(layers=16, d=2048, heads=32, kv=8, mlp=8192, ctx=4096),
}
BLOCK = {"q4_0": (32, 18, gguf.GGMLQuantizationType.Q4_0), "q8_0": (32, 34, gguf.GGMLQuantizationType.Q8_0)}

ap = argparse.ArgumentParser()
ap.add_argument("out"); ap.add_argument("tokenizer")
ap.add_argument("--shape", default="7b", choices=SHAPES); ap.add_argument("--type", default="q4_0", choices=BLOCK)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
s = SHAPES[a.shape]
block, block_bytes, qtype = BLOCK[a.type]
rng = np.random.default_rng(a.seed)

src = gguf.GGUFReader(a.tokenizer)
w = gguf.GGUFWriter(a.out, "llama")
w.add_name(f"synthetic-llama-{a.shape}-{a.type}")
w.add_block_count(s["layers"]); w.add_embedding_length(s["d"]); w.add_feed_forward_length(s["mlp"])
w.add_head_count(s["heads"]); w.add_head_count_kv(s["kv"]); w.add_context_length(s["ctx"])
w.add_rope_dimension_count(s["d"] // s["heads"]); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
for name, field in src.fields.items():   # the tokenizer, as the source file has it
    if not name.startswith("tokenizer.ggml."): continue
    t = field.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        sub = field.types[1]
        if sub == gguf.GGUFValueType.STRING:
            w.add_array(name, [bytes(field.parts[i]).decode("utf-8") for i in field.data])
        else:
            w.add_array(name, [field.parts[i][0].item() for i in field.data])
    elif t == gguf.GGUFValueType.STRING:
        w.add_string(name, bytes(field.parts[field.data[0]]).decode("utf-8"))
    else:
        w.add_key_value(name, field.parts[field.data[0]][0].item(), t)
vocab = len(src.fields["tokenizer.ggml.tokens"].data)

d, kv_dim = s["d"], s["kv"] * (s["d"] // s["heads"])
tensors = [("token_embd.weight", (vocab, d))]
for l in range(s["layers"]):
    p = f"blk.{l}."
    tensors += [(p + "attn_norm.weight", (d,)), (p + "attn_q.weight", (d, d)), (p + "attn_k.weight", (kv_dim, d)),
                (p + "attn_v.weight", (kv_dim, d)), (p + "attn_output.weight", (d, d)), (p + "ffn_norm.weight", (d,)),
                (p + "ffn_gate.weight", (s["mlp"], d)), (p + "ffn_up.weight", (s["mlp"], d)), (p + "ffn_down.weight", (d, s["mlp"]))]
tensors += [("output_norm.weight", (d,)), ("output.weight", (vocab, d))]

def nbytes(shape):
    return shape[0] * 4 if len(shape) == 1 else shape[0] * shape[1] // block * block_bytes

for name, shape in tensors:
    if len(shape) == 1:
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes(shape))
    else:   # GGUF dims are fastest-first; the writer reverses numpy's shape
        w.add_tensor_info(name, (shape[0], shape[1] // block * block_bytes), np.dtype(np.uint8), nbytes(shape), raw_dtype=qtype)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_ti_data_to_file()

scale = np.array([0.02 / (8 if a.type == "q4_0" else 127)], dtype=np.float16).view(np.uint8)   # weights within about ±0.02
total = 0
for name, shape in tensors:
    if len(shape) == 1:
        data = (1 + 0.1 * rng.standard_normal(shape[0])).astype(np.float32)
    else:
        data = rng.integers(0, 256, size=(shape[0] * shape[1] // block, block_bytes), dtype=np.uint8)
        data[:, 0], data[:, 1] = scale[0], scale[1]
        data = data.reshape(shape[0], -1)
    w.write_tensor_data(data)
    total += data.nbytes
w.close()
print(f"{a.out}: {len(tensors)} tensors, {total / 2**30:.2f} GiB of weights, vocabulary {vocab}", file=sys.stderr)
