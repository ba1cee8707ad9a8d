#!/usr/bin/env python3
"""Writes a SmolLM2-135M-shaped Llama checkpoint with random weights, for benchmarks that need no hub.

Usage: gen_llama_small.py --out DIR [--shared DIR] [--seed N] [--positions N]

DIR receives what a Hugging Face Llama checkpoint holds and attnviz reads: config.json, model.safetensors (float32),
tokenizer.json (+ tokenizer_config.json for transformers' AutoTokenizer), generator.json. The shape is SmolLM2-135M's (LlamaForCausalLM: 30 layers, 9 query heads of 64 on 3
key/value heads, hidden 576, intermediate 1536, tied LM head, rope_theta 1e5, 8192 positions unless --positions says
otherwise: rotary positions have no table, so the limit changes nothing else). The tokenizer is in
Llama 3's layout (its Split regex, ignore_merges, <|begin_of_text|> put first) over GPT-2's vocabulary and merges from
--shared (../shared/data/gpt2-tokenizer), so that a common word with its leading space is one token, as benchmark
prompts need; the vocabulary sets the embedding table's size. The weights are drawn by the model's own initialiser
under a fixed seed, so two runs write the same tensors. Needs torch, transformers and tokenizers.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from gen_bpe_json_tokenizers import llama3_tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_MERGES = 50000  # GPT-2's merges.txt has 50,000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", required=True, help="checkpoint directory to write (created)")
    p.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--positions", type=int, default=8192, help="max_position_embeddings: the longest prompt")
    return p.parse_args()


def build_model(seed, vocab_size, positions):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=positions,
                      rms_norm_eps=1e-5,
                      rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def main() -> int:
    args = parse_args()
    tok = llama3_tokenizer(args.shared, n_merges=ALL_MERGES)
    # Write into a scratch directory and rename at the end, so an interrupted run never leaves a half checkpoint.
    out = os.path.abspath(args.out)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model = build_model(args.seed, tok.get_vocab_size(with_added_tokens=True), args.positions)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save(os.path.join(tmp, "tokenizer.json"))
    # Without it AutoTokenizer would pick LlamaTokenizerFast, which rebuilds the BOS template around "<s>".
    with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                   "eos_token": "<|end_of_text|>"}, f)
        f.write("\n")
    n_params = sum(p.numel() for p in model.parameters())
    with open(os.path.join(tmp, "generator.json"), "w") as f:
        json.dump({"generator": "weights/gen_llama_small.py", "seed": args.seed, "parameters": n_params,
                   "positions": args.positions, "tokenizer": "llama3 layout over gpt2"}, f)
        f.write("\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"{out}: SmolLM2-135M shape, {n_params} parameters, {args.positions} positions, seed {args.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
