#!/usr/bin/env python3
"""Writes a GPT-2-small-shaped checkpoint (124M parameters) with random weights, for benchmarks that need no hub.

Usage: gen_gpt2_small.py --out DIR [--tokenizer DIR | --synthetic-tokenizer] [--seed N] [--n-positions N]

DIR receives what a Hugging Face GPT-2 checkpoint holds and attnviz reads:
  config.json  model.safetensors (float32)  vocab.json  merges.txt  tokenizer.json  tokenizer_config.json
The shape is GPT-2 small: 12 layers, 12 heads, n_embd 768, vocab 50257, 1024 positions. The weights are drawn by
the model's own initialiser (normal, std 0.02, residual projections scaled as GPT-2 does) under a fixed seed, so two
runs write the same tensors.

Tokenizer: vocab.json and merges.txt are copied from --tokenizer (default: $AV_GPT2_TOKENIZER, else the project's
../shared/data/gpt2-tokenizer, OpenAI's GPT-2 files); tokenizer.json is built from them, as the hub's gpt2 ships one.
--synthetic-tokenizer instead writes a byte-level BPE of the same size that knows the 256 bytes and, as single
tokens, the words of SYNTHETIC_WORDS with a leading space (the rest of its 50257 entries are unused placeholders):
enough for benchmark prompts on a machine without GPT-2's files (the GPU device machine). Needs torch and transformers.
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
VOCAB_SIZE = 50257
END_OF_TEXT = "<|endoftext|>"
# The benchmark prompts' words (bench/cpu_ab.py PROMPT_WORDS); each is one token, with its leading space, in GPT-2's
# real vocabulary and in the synthetic one.
SYNTHETIC_WORDS = ("the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "was", "on", "with", "as", "be",
                   "at", "by", "this", "from", "or", "an", "are", "not", "but", "have")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", required=True, help="checkpoint directory to write (created)")
    p.add_argument("--tokenizer", default=os.environ.get("AV_GPT2_TOKENIZER", DEFAULT_TOKENIZER),
                   help="directory holding GPT-2's vocab.json and merges.txt")
    p.add_argument("--synthetic-tokenizer", action="store_true",
                   help="write a small byte-level BPE of GPT-2's size instead of copying GPT-2's files")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-positions", type=int, default=1024)
    return p.parse_args()


def bytes_to_unicode():
    """GPT-2's map from the 256 byte values to printable characters (openai/gpt-2 encoder.py)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def write_synthetic_tokenizer(dest):
    """vocab.json + merges.txt: 256 byte tokens, left-to-right merges spelling each ' word', placeholders, EOT."""
    byte_char = bytes_to_unicode()
    vocab = {byte_char[b]: i for i, b in enumerate(sorted(byte_char))}
    merges = []
    for word in SYNTHETIC_WORDS:
        pieces = [byte_char[b] for b in (" " + word).encode("utf-8")]
        token = pieces[0]
        for piece in pieces[1:]:
            merge = f"{token} {piece}"
            token += piece
            if token not in vocab:
                merges.append(merge)
                vocab[token] = len(vocab)
    for i in range(len(vocab), VOCAB_SIZE - 1):
        vocab[f"<|unused{i}|>"] = i
    vocab[END_OF_TEXT] = VOCAB_SIZE - 1
    with open(os.path.join(dest, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(dest, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def copy_tokenizer_files(src, dest):
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(src, name), os.path.join(dest, name))


def build_model(seed, n_positions):
    torch.manual_seed(seed)
    cfg = GPT2Config(n_positions=n_positions, n_embd=768, n_layer=12, n_head=12, vocab_size=VOCAB_SIZE,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5)
    return GPT2LMHeadModel(cfg).eval()


def main() -> int:
    args = parse_args()
    if not args.synthetic_tokenizer:
        for name in ("vocab.json", "merges.txt"):
            if not os.path.isfile(os.path.join(args.tokenizer, name)):
                print(f"gen_gpt2_small: {args.tokenizer}/{name} not found (pass --tokenizer DIR, set "
                      "AV_GPT2_TOKENIZER, or use --synthetic-tokenizer)", file=sys.stderr)
                return 1

    # Write into a scratch directory and rename at the end, so an interrupted run never leaves a half checkpoint.
    out = os.path.abspath(args.out)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    model = build_model(args.seed, args.n_positions)
    model.save_pretrained(tmp, safe_serialization=True)

    def place_tokenizer_files():
        if args.synthetic_tokenizer:
            write_synthetic_tokenizer(tmp)
        else:
            copy_tokenizer_files(args.tokenizer, tmp)

    place_tokenizer_files()
    tok = GPT2Tokenizer.from_pretrained(tmp)
    # A tokenizer built with an empty vocabulary encodes everything to []; refuse to ship one.
    if len(tok(" the of and")["input_ids"]) != 3 or len(tok) != VOCAB_SIZE:
        print("gen_gpt2_small: the tokenizer built from vocab.json/merges.txt does not encode ' the of and' as "
              f"3 tokens or has {len(tok)} entries, not {VOCAB_SIZE}", file=sys.stderr)
        return 1
    tok.save_pretrained(tmp)
    # save_pretrained rewrites vocab.json and merges.txt; keep the original bytes (the tokenizer tests' reference).
    place_tokenizer_files()

    n_params = sum(p.numel() for p in model.parameters())
    with open(os.path.join(tmp, "generator.json"), "w") as f:
        json.dump({"generator": "weights/gen_gpt2_small.py", "seed": args.seed, "parameters": n_params,
                   "tokenizer": "synthetic" if args.synthetic_tokenizer else "gpt2"}, f)
        f.write("\n")

    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"{out}: GPT-2 small shape, {n_params} parameters, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
