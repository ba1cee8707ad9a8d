#!/usr/bin/env python3
"""Generates the BERT fixtures under tests/data/ from Hugging Face transformers (fp32, CPU, eager attention):

tests/data/bert-tiny/         a 2-layer, 4-head BertModel with seeded random weights, saved with save_pretrained,
                              and a small vocab.txt (no tokenizer_config.json: the Hugging Face defaults apply)
tests/data/bert-tiny/expected/  prompt.txt, ids.npy (T) int32, attentions.npy (L, NH, T, T), hidden.npy (T, C)
tests/data/bert-tiny-legacy/  the same weights stored as float16 under the names of older checkpoints ("bert."
                              prefix, LayerNorm.gamma / LayerNorm.beta), with its own expected/ (the fp16-rounded
                              weights run in fp32)
tests/data/minilm/            for the real all-MiniLM-L6-v2 (see install_default_model.sh): prompts.json and, per
                              prompt i, p{i}_ids.npy (T) int32, p{i}_attentions.npy (L, NH, T, T) and
                              p{i}_hidden.npy (T, C)

Usage: gen_bert_fixtures.py [MINILM_DIR]   (default ./models/all-MiniLM-L6-v2; skipped with a note when absent)
"""
import json
import pathlib
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, BertTokenizerFast

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SEED = 1234

TINY_PROMPT = "The big dog was running, and the small cat sat on a red mat!"
# Short prompts keep the (L, NH, T, T) fixtures small: each is at most 24 tokens with [CLS] and [SEP].
MINILM_PROMPTS = [
    "Generate Python code for a function that calculates the factorial of a number.",
    "The quick brown fox jumps over the lazy dog.",
    "Attention is all you need, isn't it? Café naïve 中文!",
]

TINY_WORDS = ["the", "a", "big", "small", "cat", "dog", "sat", "on", "mat", "and", "red", "run", "was", "is", "it"]
TINY_SUFFIXES = ["##s", "##ing", "##ed", "##ning", "##ly"]


def tiny_vocab() -> list:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "'", "-"] + TINY_WORDS + TINY_SUFFIXES
            + letters + ["##" + c for c in letters])


def randomize(model: BertModel, generator: torch.Generator) -> None:
    """Replaces the tiny initializer (std 0.02, near-uniform attention) with weights that give peaked attention."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif "embeddings" in name:
                p.copy_(noise)
            else:
                p.copy_(0.25 * noise)


def run_hf(model: BertModel, ids: list) -> tuple:
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    attentions = torch.stack([a[0] for a in out.attentions]).numpy().astype(np.float32)  # (L, NH, T, T)
    hidden = out.last_hidden_state[0].numpy().astype(np.float32)  # (T, C)
    return attentions, hidden


def legacy_names_f16(state: dict) -> dict:
    renamed = {}
    for name, t in state.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + name] = t.half().contiguous()
    return renamed


def save_expected(expected: pathlib.Path, model: BertModel, ids: list) -> None:
    attentions, hidden = run_hf(model, ids)
    expected.mkdir(parents=True)
    (expected / "prompt.txt").write_text(TINY_PROMPT)
    np.save(expected / "ids.npy", np.array(ids, dtype=np.int32))
    np.save(expected / "attentions.npy", attentions)
    np.save(expected / "hidden.npy", hidden)


def gen_tiny() -> None:
    out = DATA / "bert-tiny"
    legacy = DATA / "bert-tiny-legacy"
    for d in (out, legacy):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    vocab = tiny_vocab()
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu",
                        layer_norm_eps=1e-12, attn_implementation="eager")
    torch.manual_seed(SEED)
    model = BertModel(config, add_pooling_layer=False).eval()
    randomize(model, torch.Generator().manual_seed(SEED))
    model.save_pretrained(out, safe_serialization=True)

    tok = BertTokenizerFast.from_pretrained(str(out))
    ids = tok(TINY_PROMPT)["input_ids"]
    assert tok.unk_token_id not in ids, tok.convert_ids_to_tokens(ids)
    save_expected(out / "expected", model, ids)

    save_file(legacy_names_f16(load_file(out / "model.safetensors")), legacy / "model.safetensors",
              metadata={"format": "pt"})
    shutil.copy(out / "config.json", legacy / "config.json")
    shutil.copy(out / "vocab.txt", legacy / "vocab.txt")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    save_expected(legacy / "expected", model, ids)
    print(f"bert-tiny: T={len(ids)} {tok.convert_ids_to_tokens(ids)}")


def gen_minilm(model_dir: pathlib.Path) -> None:
    if not (model_dir / "model.safetensors").exists():
        print(f"{model_dir} is absent (run weights/install_default_model.sh): MiniLM fixtures not regenerated")
        return
    out = DATA / "minilm"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tok = BertTokenizerFast.from_pretrained(str(model_dir))
    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager", dtype=torch.float32).eval()
    for i, prompt in enumerate(MINILM_PROMPTS):
        ids = tok(prompt)["input_ids"]
        assert len(ids) <= 24, f"prompt {i} has {len(ids)} tokens; keep the fixtures small"
        attentions, hidden = run_hf(model, ids)
        np.save(out / f"p{i}_ids.npy", np.array(ids, dtype=np.int32))
        np.save(out / f"p{i}_attentions.npy", attentions)
        np.save(out / f"p{i}_hidden.npy", hidden)
        print(f"minilm p{i}: T={len(ids)} {tok.convert_ids_to_tokens(ids)}")
    (out / "prompts.json").write_text(json.dumps(MINILM_PROMPTS, ensure_ascii=False, indent=1) + "\n")


def main() -> int:
    torch.set_num_threads(1)
    gen_tiny()
    gen_minilm(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "models" / "all-MiniLM-L6-v2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
