#!/usr/bin/env python3
"""Writes the tiny GPT-2 fixtures the fidelity tests compare against (tests/data/gpt2-*).

Each fixture is a randomly initialised GPT2LMHeadModel (fixed seed) saved with save_pretrained (safetensors), a small
byte-level BPE tokenizer (GPT-2's 256 byte tokens plus the first merges of GPT-2's real merges.txt, so the vocabulary
and the embedding table stay small), and the expected ids, eager attentions and logits from Hugging Face transformers:

  tests/data/<name>/                      config.json, model.safetensors (or shards + index), vocab.json, merges.txt
  tests/data/<name>-expected/prompts.json the prompts, in order
  tests/data/<name>-expected/pK_ids.npy   int64 (T,)
  tests/data/<name>-expected/pK_attn.npy  float32 (L, NH, T, T), output_attentions=True, attn_implementation="eager"
  tests/data/<name>-expected/pK_logits.npy float32 (T, V)

Usage: python3 weights/gen_gpt2_fixtures.py [--shared ../shared] [--only NAME]   (needs torch, transformers, numpy)
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from gen_bpe_json_tokenizers import small_vocab_and_merges

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROMPTS = [
    "Generate Python code for a function that calculates the factorial of a number.",
    "Hello world! The quick brown fox jumps over the lazy dog; 1234 apples, café déjà vu.",
    "a",
    "  Spaces   and\ttabs\nand newlines<|endoftext|>after the special token",
]

FIXTURES = [
    # name, config, storage dtype, shard size: one power-of-two head count in fp32, three heads in bf16, fp16 shards
    ("gpt2-tiny", dict(n_embd=64, n_head=4, n_layer=2, n_positions=128), torch.float32, None),
    ("gpt2-tiny-bf16", dict(n_embd=48, n_head=3, n_layer=2, n_positions=96), torch.bfloat16, None),
    ("gpt2-tiny-sharded", dict(n_embd=40, n_head=5, n_layer=3, n_positions=64), torch.float16, "60KB"),
    # Heads of 64 columns, the smallest the CUDA backend's flash kernels take (--dtype bf16); bf16 and a narrow MLP
    # keep it under a megabyte.
    ("gpt2-tiny-hs64", dict(n_embd=128, n_head=2, n_layer=2, n_positions=256, n_inner=256), torch.bfloat16, None),
]

N_MERGES = 900


def write_small_tokenizer(shared, out_dir):
    """GPT-2's byte alphabet plus the first N_MERGES real merges whose parts are already in the vocabulary."""
    vocab, merges = small_vocab_and_merges(shared, N_MERGES)
    vocab["<|endoftext|>"] = len(vocab)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return len(vocab)


def write_expected(ref, encode, prompts, expected_dir, max_positions):
    """Hugging Face's ids, eager attentions (L, NH, T, T) and logits (T, V) of every prompt, from the float32 model
    REF, with ENCODE the tokenizer's text -> ids."""
    with open(os.path.join(expected_dir, "prompts.json"), "w", encoding="utf-8") as f:
        json.dump(prompts, f, ensure_ascii=False, indent=1)
    for k, prompt in enumerate(prompts):
        ids = encode(prompt)
        assert len(ids) <= max_positions
        with torch.no_grad():
            out = ref(torch.tensor([ids]), output_attentions=True)
        attn = torch.stack([a[0] for a in out.attentions]).float().numpy()
        np.save(os.path.join(expected_dir, f"p{k}_ids.npy"), np.array(ids, dtype=np.int64))
        np.save(os.path.join(expected_dir, f"p{k}_attn.npy"), attn.astype(np.float32))
        np.save(os.path.join(expected_dir, f"p{k}_logits.npy"), out.logits[0].float().numpy().astype(np.float32))


def make_fixture(shared, name, dims, dtype, shard, seed):
    model_dir = os.path.join(ROOT, "tests/data", name)
    expected_dir = os.path.join(ROOT, "tests/data", name + "-expected")
    for d in (model_dir, expected_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    vocab_size = write_small_tokenizer(shared, model_dir)
    torch.manual_seed(seed)
    # A wide init makes attention peaked rather than uniform, so errors in the scores show up in P.
    config = GPT2Config(vocab_size=vocab_size, activation_function="gelu_new", initializer_range=0.25,
                        bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1, **dims)
    model = GPT2LMHeadModel(config)
    # Random init leaves LayerNorms at 1/0 and biases at 0: perturb them so every parameter matters.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "ln" in pname or pname.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model = model.to(dtype)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(model_dir, safe_serialization=True, **kwargs)
    # The reference runs in float32 on exactly the stored (rounded) weights.
    ref = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    tok = GPT2Tokenizer(os.path.join(model_dir, "vocab.json"), os.path.join(model_dir, "merges.txt"))
    write_expected(ref, lambda text: tok(text)["input_ids"], PROMPTS, expected_dir, dims["n_positions"])
    print(f"{name}: vocab {vocab_size}, {sum(p.numel() for p in model.parameters())} parameters, {dtype}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    parser.add_argument("--only", help="write only this fixture (the others' files stay as they are)")
    args = parser.parse_args()
    for seed, (name, dims, dtype, shard) in enumerate(FIXTURES):
        if args.only and name != args.only:
            continue
        make_fixture(args.shared, name, dims, dtype, shard, 1234 + seed)


if __name__ == "__main__":
    main()
