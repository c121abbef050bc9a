#!/usr/bin/env python3
"""Checks that SAELens computes the same feature activations as Loupe for an SAE folder Loupe wrote.

    loupe cache --model M --prompt "…" --names 'blocks\\.15\\.hook_resid_post$' --out acts.safetensors
    loupe features --model M --sae SAE_DIR --encode acts.safetensors --encode-out loupe.safetensors
    /root/.cache/loupe-peer/venv/bin/python scripts/check_sae_interop.py SAE_DIR acts.safetensors loupe.safetensors

Prints the largest differences of feature_acts and sae_out, and whether the same features are active.
"""
import sys

import torch
from safetensors.torch import load_file
from sae_lens import SAE


def main(sae_dir, acts_path, loupe_path):
    sae = SAE.load_from_disk(sae_dir, device="cpu")
    acts = load_file(acts_path)
    name = sae.cfg.metadata.hook_name if sae.cfg.metadata.hook_name in acts else next(iter(acts))
    x = acts[name].reshape(-1, sae.cfg.d_in)
    ours = load_file(loupe_path)
    with torch.no_grad():
        f = sae.encode(x)
        out = sae.decode(f)
    d_f = (f - ours["feature_acts"]).abs().max().item()
    d_out = (out - ours["sae_out"]).abs().max().item()
    same = bool(((f > 0) == (ours["feature_acts"] > 0)).all())
    scale = x.abs().max().item()
    print(f"{x.shape[0]} activations of {name} (max |x| {scale:.1f}); SAELens {sae.cfg.architecture()} d_sae {sae.cfg.d_sae}")
    print(f"max |feature_acts diff| {d_f:.3g}, max |sae_out diff| {d_out:.3g}, same active features: {same}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
