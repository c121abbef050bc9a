#!/usr/bin/env python3
"""Writes the GGUF test fixtures in Tests/Fixtures/gguf/ and the values gguf-py dequantizes them to.

For each supported ggml type, `<type>.gguf` holds two tensors:
  matrix  numpy shape [2, 512]     quantized from Gaussian values with `gguf.quants.quantize` where gguf-py
                                   can quantize that type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1);
                                   for the K-quants, which gguf-py only dequantizes, random blocks
  cube    numpy shape [2, 3, 256]  random blocks: random bytes with the f16 scale fields replaced by finite
                                   random halves (so every nibble and high-bit pattern occurs); for
                                   F16/BF16 every 16-bit pattern is fair game, NaNs and infinities included
`metadata.gguf` holds a value of every metadata type, arrays of each, nested arrays, a custom
`general.alignment` of 64, and small F32 tensors of 1 and 4 dimensions.
`expected.safetensors` maps `<file stem>/<tensor>` to `gguf.quants.dequantize` of the tensor's bytes as
`gguf.GGUFReader` reads them back from the written file (numpy's row-major shape, i.e. ggml dims reversed).

Run with the peer venv (numpy, gguf, safetensors):
    /root/.cache/loupe-peer/venv/bin/python scripts/make_gguf_fixtures.py
"""

from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "gguf"

# Byte offsets of the f16 scale fields in one block of each quantized type.
F16_FIELDS = {
    T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
QUANTIZABLE = {T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1}
TYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]


def random_blocks(rng: np.random.Generator, qtype: T, shape: tuple[int, ...]) -> np.ndarray:
    """Random quantized bytes for a tensor of `shape` (elements), with finite f16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scales = (rng.standard_normal(n_blocks) * 0.02).astype(np.float16)
        scales[0] = 0  # a zero scale (and, for Q4_1/Q5_1/K mins, a zero min) in the first block
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(*shape[:-1], shape[-1] // block * size)


def tensor_bytes(rng: np.random.Generator, qtype: T, shape: tuple[int, ...], quantize: bool) -> np.ndarray:
    """What to hand GGUFWriter.add_tensor: float data for F32/F16, raw bytes otherwise."""
    if qtype == T.F32:
        x = rng.standard_normal(shape).astype(np.float32)
        if not quantize:
            x.flat[:6] = [np.inf, -np.inf, np.nan, -0.0, 1e-45, 3.4e38]
        return x
    if qtype in (T.F16, T.BF16) and not quantize:
        bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16)
        return bits.view(np.float16) if qtype == T.F16 else bits.view(np.uint8).reshape(*shape[:-1], shape[-1] * 2)
    if quantize and qtype in QUANTIZABLE:
        x = rng.standard_normal(shape).astype(np.float32)
        return gguf.quants.quantize(x, qtype)
    return random_blocks(rng, qtype, shape)


def write_type_fixture(rng: np.random.Generator, qtype: T) -> Path:
    path = OUT / f"{qtype.name.lower()}.gguf"
    w = gguf.GGUFWriter(path, arch="loupe-test")
    w.add_uint32("general.file_type_under_test", int(qtype))
    for name, shape, quantize in [("matrix", (2, 512), True), ("cube", (2, 3, 256), False)]:
        data = tensor_bytes(rng, qtype, shape, quantize)
        raw_dtype = None if data.dtype in (np.float32, np.float16) else qtype
        w.add_tensor(name, data, raw_dtype=raw_dtype)
    finish(w)
    return path


def write_metadata_fixture() -> Path:
    path = OUT / "metadata.gguf"
    w = gguf.GGUFWriter(path, arch="loupe-test")
    w.add_custom_alignment(64)
    scalars = [
        ("test.uint8", 255, V.UINT8), ("test.int8", -128, V.INT8),
        ("test.uint16", 65535, V.UINT16), ("test.int16", -32768, V.INT16),
        ("test.uint32", 4294967295, V.UINT32), ("test.int32", -2147483648, V.INT32),
        ("test.uint64", 2**64 - 1, V.UINT64), ("test.uint64_small", 12345678901, V.UINT64),
        ("test.int64", -(2**63), V.INT64),
        ("test.float32", 0.1, V.FLOAT32), ("test.float64", 0.1, V.FLOAT64),
        ("test.bool_true", True, V.BOOL), ("test.bool_false", False, V.BOOL),
        ("test.string", "héllo, 世界 🦙", V.STRING), ("test.empty_string", "", V.STRING),
    ]
    for key, value, vtype in scalars:
        w.add_key_value(key, value, vtype)
    arrays = [
        ("test.array.uint8", [0, 1, 255], V.UINT8), ("test.array.int8", [-128, 0, 127], V.INT8),
        ("test.array.uint16", [0, 65535], V.UINT16), ("test.array.int16", [-32768, 32767], V.INT16),
        ("test.array.uint32", [0, 4294967295], V.UINT32), ("test.array.int32", [-2147483648, 7], V.INT32),
        ("test.array.uint64", [0, 2**40], V.UINT64), ("test.array.int64", [-(2**63), 2**62], V.INT64),
        ("test.array.float32", [1.5, -0.25, 0.1], V.FLOAT32), ("test.array.float64", [0.1, -2.0], V.FLOAT64),
        ("test.array.bool", [True, False, True], V.BOOL),
        ("test.array.string", ["a", "", "bc", "Ġthe", "<|endoftext|>"], V.STRING),
    ]
    for key, value, sub in arrays:
        w.add_key_value(key, value, V.ARRAY, sub_type=sub)
    # Inner arrays take the type gguf-py infers from their first element: int -> int32, str -> string.
    w.add_key_value("test.nested.int", [[1, 2, 3], [4], [5, 6]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("test.nested.string", [["x", "y"], ["z"]], V.ARRAY, sub_type=V.ARRAY)
    w.add_key_value("test.nested.deep", [[[1], [2, 3]], [[4]]], V.ARRAY, sub_type=V.ARRAY)
    w.add_tensor("vector", np.arange(5, dtype=np.float32) - 2)
    w.add_tensor("hyper", np.arange(12, dtype=np.float32).reshape(2, 1, 3, 2) / 8)
    finish(w)
    return path


def finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240607)
    paths = [write_type_fixture(rng, qtype) for qtype in TYPES] + [write_metadata_fixture()]
    expected: dict[str, np.ndarray] = {}
    for path in paths:
        reader = gguf.GGUFReader(path)
        for t in reader.tensors:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            expected[f"{path.stem}/{t.name}"] = np.ascontiguousarray(values, dtype=np.float32)
    save_file(expected, str(OUT / "expected.safetensors"))
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(paths)} GGUF files and {len(expected)} expected tensors to {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
