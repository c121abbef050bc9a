#!/usr/bin/env python3
"""Writes Tests/Fixtures/gguf/llama-tiny.gguf: a complete, tiny Llama-architecture GGUF (2 layers, d_model 64,
4 heads / 2 KV heads, d_mlp 128, context 64) with a byte-level BPE tokenizer of its own (the 256 byte tokens,
40 merges learned from a sentence, <|endoftext|> and <|im_start|> as control tokens, one user-defined token),
random weights in the types llama.cpp files mix: F32 norms, F16 embedding, Q8_0 attention, Q4_1 gate/up,
Q4_0 down. It is what the fuzz harness mutates to reach the whole GGUF model path (metadata → config →
tokenizer → in-place quantized model → a forward pass); ~60 KB.

Run with the peer venv (numpy, gguf):  /root/.cache/loupe-peer/venv/bin/python scripts/make_tiny_gguf.py
"""
from collections import Counter
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gguf" / "llama-tiny.gguf"
L, D, H, KV, MLP, CTX = 2, 64, 4, 2, 128, 64


def byte_alphabet():
    """GPT-2's byte → printable character table (bytes_to_unicode)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def learn_merges(text, count):
    """Plain BPE over the byte-alphabet spelling of the words of `text`."""
    alphabet = byte_alphabet()
    words = Counter()
    for i, w in enumerate(text.split(" ")):
        words[tuple(alphabet[b] for b in ((" " if i else "") + w).encode())] += 1
    merges = []
    for _ in range(count):
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        new = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == (a, b):
                    out.append(a + b); i += 2
                else:
                    out.append(w[i]); i += 1
            new[tuple(out)] += c
        words = new
    return merges


alphabet = byte_alphabet()
tokens = [alphabet[b] for b in range(256)]
merges = learn_merges("the cat sat on the mat and the dog sat on the log; the cat and the dog are there", 40)
for a, b in merges:
    if a + b not in tokens:
        tokens.append(a + b)
types = [1] * len(tokens)
for special, kind in [("<|endoftext|>", 3), ("<|im_start|>", 3), ("<tool>", 4)]:
    tokens.append(special); types.append(kind)
vocab = len(tokens)

w = gguf.GGUFWriter(str(OUT), "llama")
w.add_name("llama-tiny (Loupe fuzz fixture)")
w.add_block_count(L); w.add_embedding_length(D); w.add_feed_forward_length(MLP)
w.add_head_count(H); w.add_head_count_kv(KV); w.add_context_length(CTX)
w.add_rope_dimension_count(D // H); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("smollm")
w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges([f"{a} {b}" for a, b in merges])
w.add_bos_token_id(vocab - 3); w.add_eos_token_id(vocab - 3); w.add_add_bos_token(False)

rng = np.random.default_rng(20261203)


def add(name, shape, qtype):
    x = (rng.standard_normal(shape) * (1.0 if len(shape) == 1 else 0.5 / np.sqrt(shape[-1]))).astype(np.float32)
    if len(shape) == 1:
        w.add_tensor(name, (1 + 0.1 * x).astype(np.float32))
    elif qtype == T.F16:
        w.add_tensor(name, x.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)


add("token_embd.weight", (vocab, D), T.F16)
for l in range(L):
    p = f"blk.{l}."
    add(p + "attn_norm.weight", (D,), None)
    add(p + "attn_q.weight", (D, D), T.Q8_0); add(p + "attn_k.weight", (KV * D // H, D), T.Q8_0)
    add(p + "attn_v.weight", (KV * D // H, D), T.Q8_0); add(p + "attn_output.weight", (D, D), T.Q8_0)
    add(p + "ffn_norm.weight", (D,), None)
    add(p + "ffn_gate.weight", (MLP, D), T.Q4_1); add(p + "ffn_up.weight", (MLP, D), T.Q4_1)
    add(p + "ffn_down.weight", (D, MLP), T.Q4_0)
add("output_norm.weight", (D,), None)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print(OUT, OUT.stat().st_size, "bytes,", vocab, "tokens,", len(merges), "merges")
