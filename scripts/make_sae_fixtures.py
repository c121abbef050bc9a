#!/usr/bin/env python3
"""SAE interop fixtures between Loupe and SAELens (sae-lens 6.x, in the peer venv:
`/root/.cache/loupe-peer/venv/bin/pip install sae-lens`).

(a) SAELens loads the SAEs that Loupe trained on Tests/Fixtures/gpt2-tiny (Tests/Fixtures/sae/loupe-gpt2-tiny,
    TopK, and loupe-gpt2-tiny-standard, ReLU) and computes their feature activations and reconstructions on
    fixed inputs -> Tests/Fixtures/sae/NAME-expected.safetensors. The SAEs were made by
      loupe train sae --model Tests/Fixtures/gpt2-tiny --hook blocks.0.hook_resid_post \
        --corpus ../shared/data/corpora/austen/northanger-abbey.txt --max-corpus-tokens 20000 --d-sae 64 \
        --tokens 25600 --batch 256 --context 32 --eval-windows 8 --lr 2e-3 --out DIR
    with --k 8 (TopK) and with --architecture standard --l1 0.01.
(b) SAELens saves two random SAEs (d_in 32, d_sae 64): a standard (ReLU) one and a TopK one (k 8, with
    rescale_acts_by_decoder_norm and decoder rows of random norms) -> Tests/Fixtures/sae/saelens-{standard,topk}/,
    each with expected.safetensors (inputs, feature_acts, sae_out) from SAELens.

Usage: /root/.cache/loupe-peer/venv/bin/python scripts/make_sae_fixtures.py
"""
from pathlib import Path

import torch
from safetensors.torch import save_file
from sae_lens import SAE, StandardSAEConfig, TopKSAEConfig

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "sae"


def expected(sae, inputs):
    with torch.no_grad():
        acts = sae.encode(inputs)
        out = sae.decode(acts)
    return {"inputs": inputs.contiguous(), "feature_acts": acts.contiguous(), "sae_out": out.contiguous()}


def main():
    g = torch.Generator().manual_seed(0)

    # (a) Loupe -> SAELens.
    for name in ["loupe-gpt2-tiny", "loupe-gpt2-tiny-standard"]:
        loupe_sae = SAE.load_from_disk(ROOT / name, device="cpu")
        d_in = loupe_sae.cfg.d_in
        # Inputs near the data: around b_dec, at the scale of the decoder's reach.
        inputs = loupe_sae.b_dec.detach() + 0.3 * torch.randn(24, d_in, generator=g)
        save_file(expected(loupe_sae, inputs), ROOT / f"{name}-expected.safetensors")

    # (b) SAELens -> Loupe.
    for name, cfg in [
        ("standard", StandardSAEConfig(d_in=32, d_sae=64)),
        ("topk", TopKSAEConfig(d_in=32, d_sae=64, k=8, rescale_acts_by_decoder_norm=True)),
    ]:
        cfg.metadata.hook_name = "blocks.0.hook_resid_post"
        cfg.metadata.model_name = "gpt2-tiny"
        sae = SAE.from_dict(cfg.to_dict())
        with torch.no_grad():
            sae.W_enc.copy_(torch.randn(32, 64, generator=g) * 0.3)
            sae.b_enc.copy_(torch.randn(64, generator=g) * 0.1)
            norms = 0.5 + torch.rand(64, 1, generator=g)
            w = torch.randn(64, 32, generator=g)
            sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True) * norms)
            sae.b_dec.copy_(torch.randn(32, generator=g) * 0.2)
        folder = ROOT / f"saelens-{name}"
        sae.save_model(folder)
        inputs = torch.randn(24, 32, generator=g)
        save_file(expected(sae, inputs), folder / "expected.safetensors")
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
