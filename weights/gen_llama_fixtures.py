#!/usr/bin/env python3
"""Writes the tiny Llama-family fixtures the fidelity tests compare against (tests/data/llama-*, qwen2-*).

Each fixture is a randomly initialised LlamaForCausalLM or Qwen2ForCausalLM (fixed seed, grouped-query attention)
saved with save_pretrained (safetensors), a small byte-level BPE tokenizer.json in the Llama-3 or Qwen2 layout (from
weights/gen_bpe_json_tokenizers.py), and the expected ids, eager attentions and logits from Hugging Face transformers:

  tests/data/<name>/                       config.json, model.safetensors, tokenizer.json
  tests/data/<name>-expected/prompts.json  the prompts, in order
  tests/data/<name>-expected/pK_ids.npy    int64 (T,)   (Llama-3's tokenizer puts <|begin_of_text|> first)
  tests/data/<name>-expected/pK_attn.npy   float32 (L, NH, T, T), output_attentions=True, attn_implementation="eager"
  tests/data/<name>-expected/pK_logits.npy float32 (T, V)
  tests/data/<name>-expected/inv_freq.npy  float32 (HS / 2), the rotary frequencies transformers computed

Usage: python3 weights/gen_llama_fixtures.py [--shared ../shared] [--only NAME]   (needs torch, transformers,
tokenizers, numpy)
"""
import argparse
import os
import shutil

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from gen_bpe_json_tokenizers import llama3_tokenizer, qwen2_tokenizer
from gen_gpt2_fixtures import write_expected

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Fewer merges than the tokenizer fixtures: the vocabulary sets the size of the embeddings and of the logits.
N_MERGES = 300

# Prompts 0 and 1 run past original_max_position_embeddings (32) of the llama3-rope fixture, so that its scaled
# frequencies matter.
PROMPTS = [
    "Generate Python code for a function that calculates the factorial of a number.",
    "Hello world! The quick brown fox jumps over the lazy dog; 1234567 apples, café déjà vu. It's HE'S",
    "a",
    "  Spaces   and\ttabs\nand newlines\r\n<|end_of_text|>after 3.14159 <|im_start|>",
]

FIXTURES = [
    # name, family, dims, storage dtype
    # Four query heads on two key/value heads, untied LM head, plain RoPE, float32.
    ("llama-tiny", "llama",
     dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=96,
          max_position_embeddings=160, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
          tie_word_embeddings=False),
     torch.float32),
    # Three query heads on one key/value head (multi-query), Llama 3.1's rope scaling, tied LM head, bf16.
    ("llama-tiny-llama3rope", "llama",
     dict(hidden_size=96, num_attention_heads=3, num_key_value_heads=1, num_hidden_layers=2, intermediate_size=128,
          max_position_embeddings=160,
          rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
          tie_word_embeddings=True),
     torch.bfloat16),
    # Qwen2: biases on q, k and v, six query heads on two key/value heads, fp16.
    ("qwen2-tiny", "qwen2",
     dict(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, num_hidden_layers=2, intermediate_size=160,
          max_position_embeddings=160, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
          tie_word_embeddings=False),
     torch.float16),
    # Heads of 64 columns, the smallest the CUDA backend's flash kernels take (--dtype bf16): two query heads on one
    # key/value head, bf16, tied head.
    ("llama-tiny-hs64", "llama",
     dict(hidden_size=128, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=2, intermediate_size=192,
          max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
          tie_word_embeddings=True),
     torch.bfloat16),
]

FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, llama3_tokenizer),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, qwen2_tokenizer),
}


def make_fixture(shared, name, family, dims, dtype, seed):
    config_class, model_class, make_tokenizer = FAMILIES[family]
    model_dir = os.path.join(ROOT, "tests/data", name)
    expected_dir = os.path.join(ROOT, "tests/data", name + "-expected")
    for d in (model_dir, expected_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    tok = make_tokenizer(shared, n_merges=N_MERGES)
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    torch.manual_seed(seed)
    # A wide init makes attention peaked rather than uniform, so errors in the scores show up in P.
    config = config_class(vocab_size=vocab_size, initializer_range=0.2, rms_norm_eps=1e-5, **dims)
    model = model_class(config)
    # Random init leaves RMSNorm weights at 1 and biases at 0: perturb them so every parameter matters.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname or pname.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model = model.to(dtype)
    model.save_pretrained(model_dir, safe_serialization=True)
    # The reference runs in float32 on exactly the stored (rounded) weights.
    ref = model_class.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    inv_freq = ref.model.rotary_emb.inv_freq.float().numpy()
    np.save(os.path.join(expected_dir, "inv_freq.npy"), inv_freq.astype(np.float32))
    write_expected(ref, lambda text: tok.encode(text).ids, PROMPTS, expected_dir, dims["max_position_embeddings"])
    print(f"{name}: vocab {vocab_size}, {sum(p.numel() for p in model.parameters())} parameters, {dtype}, "
          f"prompt lengths {[len(tok.encode(p).ids) for p in PROMPTS]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    parser.add_argument("--only", help="write only this fixture (the others' files stay as they are)")
    args = parser.parse_args()
    for seed, (name, family, dims, dtype) in enumerate(FIXTURES):
        if args.only and name != args.only:
            continue
        make_fixture(args.shared, name, family, dims, dtype, 4321 + seed)


if __name__ == "__main__":
    main()
