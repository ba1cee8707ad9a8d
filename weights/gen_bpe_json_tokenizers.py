#!/usr/bin/env python3
"""Writes small tokenizer.json fixtures laid out as Llama 3 and Qwen2 ship theirs, with the ids Hugging Face
`tokenizers` gives, for tests/test_tokenizer_bpe_json.c.

Both are byte-level BPE over GPT-2's 256 byte tokens plus the first N_MERGES of GPT-2's real merges.txt (so the
files stay small), behind the upstream pipelines:

  tok-llama3  pre_tokenizer Sequence[Split(LLAMA3_PATTERN, Isolated), ByteLevel(use_regex=false)],
              model ignore_merges=true (the vocab also holds a few whole words no merge sequence reaches),
              post_processor Sequence[ByteLevel, TemplateProcessing("<|begin_of_text|> $A")],
              special tokens <|begin_of_text|> (id = vocab size) and <|end_of_text|>
  tok-qwen2   normalizer NFC, pre_tokenizer Sequence[Split(QWEN2_PATTERN, Isolated), ByteLevel(use_regex=false)],
              post_processor ByteLevel, no BOS, special tokens <|endoftext|> <|im_start|> <|im_end|>;
              merges written as "a b" strings (the older file form; Llama 3's are [a, b] pairs)

  tests/data/<name>/tokenizer.json
  tests/data/<name>/cases.jsonl   one {"text", "ids", "byte_offsets", "decoded"} per prompt: ids and offsets from
                                  encode(text) (offsets converted from characters to UTF-8 bytes), decoded from
                                  decode(ids, skip_special_tokens=False)
  tests/data/tok-llama3/split_cases.jsonl  {"pattern", "text", "ids"}: the Llama 3 tokenizer with its Split regex
                                  replaced by patterns that leave text between matches or match the empty string

llama3_tokenizer(shared_dir) and qwen2_tokenizer(shared_dir) return the tokenizers.Tokenizer objects, for scripts
that build model fixtures around them.

Usage: python3 weights/gen_bpe_json_tokenizers.py [--shared ../shared]   (needs tokenizers; imports
gen_gpt2_small, which needs torch and transformers)
"""
import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from gen_gpt2_small import bytes_to_unicode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The upstream regexes, verbatim (meta-llama/Llama-3.1-8B and Qwen/Qwen2.5-7B tokenizer.json).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

N_MERGES = 800
# Whole words in the Llama 3 vocab that no merge builds: only ignore_merges encodes them as one token.
LLAMA3_WHOLE_WORDS = [" zebra", "Hello", " naïve", " 東京", "123", "Straße"]

PROMPTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Generate Python code for a function that calculates the factorial of a number.",
    "1234567 and 12 and 1,000,000.50",
    "In 2024 the price was $99999.",
    "HE'S here, she's there, WE'LL see, they'D know, I'M sure, it'T isn't.",
    "don't won't can't Y'ALL",
    "a zebra, a Zebra, zebras; Hello! hello",
    "naïve café déjà vu über Straße",
    "東京は日本の首都です。",
    "中文 and 日本語 mixed 한국어 text",
    "emoji 😀 🎉👍🏽 family 👨‍👩‍👧",
    "tabs\tand\ttabs\t\t",
    "line one\nline two\n\nline four",
    "windows\r\nline endings\r\n",
    "trailing spaces   ",
    "    four spaces before",
    "a  b   c    d",
    " leading space",
    "\n\n\nnewlines first",
    "x  \n  y",
    "!!! ??? ... ---",
    "(parens) [brackets] {braces} <angles>",
    "email@example.com https://example.com/path?q=1&r=2",
    "    def f(x):\n        return x ** 2\n",
    "e\u0301 combining acute, n\u0303, A\u030a, and precomposed é",
    "Cafe\u0301 au lait",
    # Canonical reordering, a composition exclusion, and Hangul jamo (class-0 characters that compose with each other)
    "a\u0301\u0323 a\u0323\u0301 \u00e9\u0323 \u0958 jamo \u1100\u1161\u11a8 end",
    "Ω ohm sign \u2126 and angstrom \u212b",
    "ǅ ǆ ﬁ ligature ² superscript",
    "\u017f long s: it'\u017f odd",
    "Ελληνικά και русский текст",
    "مرحبا بالعالم",
    "ज़िंदगी हिन्दी",
    "x\u00a0y non-breaking\u3000ideographic space",
    "zero\u200bwidth",
    "0",
    " ",
    "a",
    "123abc456def7890",
    "3.14159265358979",
]

# Split regexes that do not tile the text: what lies between matches is a piece too, and an empty match splits.
SPLIT_PATTERNS = [r"\p{N}+", r"x*", r"(?=b)", r"\s"]
SPLIT_TEXTS = ["the 12 thexthe", "abcab", "ab  the "]

LLAMA3_SPECIAL_PROMPTS = [
    "<|begin_of_text|>Hello<|end_of_text|>",
    "text <|end_of_text|> more text",
    "<|end_of_text|><|begin_of_text|>",
    "<|begin_of_text",
]
QWEN2_SPECIAL_PROMPTS = [
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "before<|endoftext|>after",
    "  <|im_end|>  spaced  ",
    "<|im_start|",
]


def byte_level(text):
    byte_char = bytes_to_unicode()
    return "".join(byte_char[b] for b in text.encode("utf-8"))


def small_vocab_and_merges(shared_dir, n_merges):
    """GPT-2's byte alphabet plus the first n_merges real merges whose parts are already in the vocabulary."""
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    merges = []
    with open(os.path.join(shared_dir, "data/gpt2-tokenizer/merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    for line in lines:
        if len(merges) == n_merges:
            break
        if not line:
            continue
        a, b = line.split(" ")
        if a in vocab and b in vocab and a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    return vocab, merges


def split_then_byte_level(pattern):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def llama3_tokenizer(shared_dir, n_merges=N_MERGES):
    vocab, merges = small_vocab_and_merges(shared_dir, n_merges)
    for word in LLAMA3_WHOLE_WORDS:
        vocab.setdefault(byte_level(word), len(vocab))
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=True))
    tok.pre_tokenizer = split_then_byte_level(LLAMA3_PATTERN)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    assert bos == len(vocab)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def qwen2_tokenizer(shared_dir, n_merges=N_MERGES):
    vocab, merges = small_vocab_and_merges(shared_dir, n_merges)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = split_then_byte_level(QWEN2_PATTERN)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    return tok


def char_to_byte_offsets(text):
    """UTF-8 byte offset of each character index (and of the end)."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + len(ch.encode("utf-8")))
    return offsets


def write_fixture(tok, name, prompts, merges_as_strings=False):
    out_dir = os.path.join(ROOT, "tests/data", name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path)
    if merges_as_strings:
        with open(path, encoding="utf-8") as f:
            root = json.load(f)
        root["model"]["merges"] = [" ".join(pair) for pair in root["model"]["merges"]]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(root, f, ensure_ascii=False, indent=2)
    # The cases come from the file as saved, so a detail lost in saving shows up here rather than in the C tests.
    tok = Tokenizer.from_file(path)
    with open(os.path.join(out_dir, "cases.jsonl"), "w", encoding="utf-8") as f:
        for text in prompts:
            enc = tok.encode(text)
            to_byte = char_to_byte_offsets(text)
            case = {"text": text, "ids": enc.ids, "byte_offsets": [[to_byte[s], to_byte[e]] for s, e in enc.offsets],
                    "decoded": tok.decode(enc.ids, skip_special_tokens=False)}
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"{name}: vocab {tok.get_vocab_size()}, {len(prompts)} cases, {os.path.getsize(path)} bytes")


def write_split_cases(shared_dir):
    tok = llama3_tokenizer(shared_dir)
    with open(os.path.join(ROOT, "tests/data/tok-llama3/split_cases.jsonl"), "w", encoding="utf-8") as f:
        for pattern in SPLIT_PATTERNS:
            tok.pre_tokenizer = split_then_byte_level(pattern)
            for text in SPLIT_TEXTS:
                f.write(json.dumps({"pattern": pattern, "text": text, "ids": tok.encode(text).ids}) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    args = parser.parse_args()
    write_fixture(llama3_tokenizer(args.shared), "tok-llama3", PROMPTS + LLAMA3_SPECIAL_PROMPTS)
    write_split_cases(args.shared)
    write_fixture(qwen2_tokenizer(args.shared), "tok-qwen2", PROMPTS + QWEN2_SPECIAL_PROMPTS, merges_as_strings=True)


if __name__ == "__main__":
    main()
