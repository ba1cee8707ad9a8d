#!/usr/bin/env python3
"""Writes a GPT-2-small-shaped checkpoint (124M parameters) with random weights, for benchmarks that need no hub.

Usage: gen_gpt2_small.py --out DIR [--tokenizer DIR] [--seed N] [--n-positions N]

DIR receives what a Hugging Face GPT-2 checkpoint holds and attnviz reads:
  config.json  model.safetensors (float32)  vocab.json  merges.txt  tokenizer.json  tokenizer_config.json
The shape is GPT-2 small: 12 layers, 12 heads, n_embd 768, vocab 50257, 1024 positions. The weights are drawn by
the model's own initialiser (normal, std 0.02, residual projections scaled as GPT-2 does) under a fixed seed, so two
runs write the same tensors. vocab.json and merges.txt are copied from --tokenizer (default: the project's
../shared/data/gpt2-tokenizer, OpenAI's GPT-2 files); tokenizer.json is built from them, as the hub's gpt2 ships one.
Needs torch and transformers.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TOKENIZER = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "gpt2-tokenizer"))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", required=True, help="checkpoint directory to write (created)")
    p.add_argument("--tokenizer", default=os.environ.get("AV_GPT2_TOKENIZER", DEFAULT_TOKENIZER),
                   help="directory holding GPT-2's vocab.json and merges.txt")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-positions", type=int, default=1024)
    return p.parse_args()


def build_model(seed, n_positions):
    torch.manual_seed(seed)
    cfg = GPT2Config(n_positions=n_positions, n_embd=768, n_layer=12, n_head=12, vocab_size=50257,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5)
    model = GPT2LMHeadModel(cfg).eval()
    return model


def main() -> int:
    args = parse_args()
    vocab = os.path.join(args.tokenizer, "vocab.json")
    merges = os.path.join(args.tokenizer, "merges.txt")
    for f in (vocab, merges):
        if not os.path.isfile(f):
            print(f"gen_gpt2_small: {f} not found (pass --tokenizer DIR or set AV_GPT2_TOKENIZER)", file=sys.stderr)
            return 1

    # Write into a scratch directory and rename at the end, so an interrupted run never leaves a half checkpoint.
    out = os.path.abspath(args.out)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    model = build_model(args.seed, args.n_positions)
    model.save_pretrained(tmp, safe_serialization=True)
    shutil.copyfile(vocab, os.path.join(tmp, "vocab.json"))
    shutil.copyfile(merges, os.path.join(tmp, "merges.txt"))
    tok = GPT2Tokenizer.from_pretrained(tmp)
    # A tokenizer built with an empty vocabulary encodes everything to []; refuse to ship one.
    if tok(" the quick")["input_ids"] != [262, 2068]:
        print("gen_gpt2_small: the tokenizer built from vocab.json/merges.txt does not encode ' the quick'",
              file=sys.stderr)
        return 1
    tok.save_pretrained(tmp)
    # save_pretrained rewrites vocab.json/merges.txt; keep OpenAI's bytes (the tokenizer tests' reference).
    shutil.copyfile(vocab, os.path.join(tmp, "vocab.json"))
    shutil.copyfile(merges, os.path.join(tmp, "merges.txt"))

    n_params = sum(p.numel() for p in model.parameters())
    with open(os.path.join(tmp, "generator.json"), "w") as f:
        json.dump({"generator": "weights/gen_gpt2_small.py", "seed": args.seed, "parameters": n_params}, f)
        f.write("\n")

    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"{out}: GPT-2 small shape, {n_params} parameters, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
