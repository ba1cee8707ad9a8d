#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (pytorch_model.bin) to model.safetensors, the only weight format attnviz reads.

Usage: convert_to_safetensors.py IN.bin OUT.safetensors

Tensors keep their names and dtypes. Tied or otherwise shared storages are cloned (safetensors refuses aliases), and
every tensor is made contiguous. Needs torch and safetensors; run once, at install time.
"""
import sys

import torch
from safetensors.torch import save_file


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    state = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    tensors = {name: t.detach().clone().contiguous() for name, t in state.items() if isinstance(t, torch.Tensor)}
    if not tensors:
        print(f"{src}: no tensors found", file=sys.stderr)
        return 1
    save_file(tensors, dst, metadata={"format": "pt"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
