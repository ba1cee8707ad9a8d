#!/usr/bin/env python3
"""Writes the starting corpora of the fuzz targets from the project's fixtures (tests/fuzz/README.md).

Usage: python3 tests/fuzz/seed.py OUT_DIR    (OUT_DIR/<target>/ for each target; the fixtures are read in place)
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
SHARED = os.path.join(ROOT, "..", "shared", "data", "gpt2-tokenizer")


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def write(out, target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


def tiny_tokenizer_json(vocab, merges):
    """tokenizer.json as Hugging Face writes it, around GPT-2 tiny's vocabulary and merges."""
    pairs = [line for line in merges.decode().splitlines() if line and not line.startswith("#version")]
    return json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": len(json.loads(vocab)) - 1, "content": "<|endoftext|>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "vocab": json.loads(vocab), "merges": pairs},
    }).encode()


def small_safetensors():
    """A few hundred bytes with every kind of entry the parser meets: metadata, each float dtype, an integer and a
    bool tensor, a scalar and an empty tensor, so that mutations reach the parser quickly."""
    tensors, data = {}, b""
    for name, dtype, shape, raw in [
        ("a.f32", "F32", [2, 3], struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, 65504)),
        ("b.f16", "F16", [4], struct.pack("<4e", 1, -2, 0.5, 65504)),
        ("c.bf16", "BF16", [2, 1], struct.pack("<2H", 0x3F80, 0xC000)),
        ("d.i64", "I64", [1], struct.pack("<q", 7)),
        ("e.bool", "BOOL", [3], b"\x01\x00\x01"),
        ("f.scalar", "F32", [], struct.pack("<f", 2.0)),
        ("g.empty", "F32", [0, 4], b""),
    ]:
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header = json.dumps({"__metadata__": {"format": "pt"}, **tensors}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def main():
    out = sys.argv[1]
    fixtures = sorted(d for d in os.listdir(DATA) if os.path.exists(os.path.join(DATA, d, "config.json")))
    for d in fixtures:
        write(out, "fuzz_config", d, read(DATA, d, "config.json"))
    for d in ("gpt2-tiny", "bert-tiny"):
        write(out, "fuzz_safetensors", d, read(DATA, d, "model.safetensors"))
    write(out, "fuzz_safetensors", "small", small_safetensors())

    vocab, merges = read(DATA, "gpt2-tiny", "vocab.json"), read(DATA, "gpt2-tiny", "merges.txt")
    write(out, "fuzz_tokenizer_files", "tokenizer_json", b"\x00" + tiny_tokenizer_json(vocab, merges))
    write(out, "fuzz_tokenizer_files", "tokenizer_json_llama3", b"\x00" + read(DATA, "tok-llama3", "tokenizer.json"))
    write(out, "fuzz_tokenizer_files", "vocab_merges", b"\x01" + vocab + b"\x00" + merges)
    write(out, "fuzz_tokenizer_files", "vocab_txt", b"\x02" + read(DATA, "bert-tiny", "vocab.txt"))

    cases = [(0, SHARED), (1, os.path.join(DATA, "wordpiece")), (3, os.path.join(DATA, "tok-llama3"))]
    for selector, directory in cases:
        with open(os.path.join(directory, "cases.jsonl"), encoding="utf-8") as f:
            for i, line in enumerate(f):
                case = json.loads(line)
                text = bytes.fromhex(case["utf8_hex"]) if "utf8_hex" in case else case["text"].encode("utf-8")
                write(out, "fuzz_encode", f"{selector}-{i:04d}", bytes([selector]) + text)


if __name__ == "__main__":
    main()
