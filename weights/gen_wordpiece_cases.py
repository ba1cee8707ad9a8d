#!/usr/bin/env python3
"""Generates tests/data/wordpiece/: the expected WordPiece encodings of tricky texts, by Hugging Face's fast
tokenizer (BertTokenizerFast, i.e. the `tokenizers` library) on all-MiniLM-L6-v2's vocab.txt.

Usage: gen_wordpiece_cases.py [MODEL_DIR]   (default: ./models/all-MiniLM-L6-v2, see install_default_model.sh)

Writes vocab.txt and tokenizer_config.json (copied from the model) and cases.jsonl, one JSON object per line:
  text      the prompt (for people; may hold characters JSON readers mangle, such as NUL)
  utf8_hex  the prompt's UTF-8 bytes in hex (what the C test feeds the tokenizer)
  ids       token ids, [CLS] and [SEP] included
  offsets   [start, end) BYTE offsets into the prompt per token (Hugging Face reports code points; converted here)
  tokens    the tokens' strings
The encoding from vocab.txt is also checked against the model's tokenizer.json, so both describe the same tokenizer.
"""
import json
import pathlib
import shutil
import sys

from transformers import BertTokenizerFast, PreTrainedTokenizerFast

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "wordpiece"

TEXTS = [
    "Generate Python code for a function that calculates the factorial of a number.",
    "Hello, world!",
    "UNaffable unAFFable",
    "Café résumé naïve façade coöperate",
    "Ångström Øresund Straße",
    "İstanbul ıi Iİ",
    "中文字符测试",
    "CJK mixed: 我爱machine learning和NLP!",
    "日本語のテキスト、カタカナ。",
    "한국어 텍스트",
    "   leading and trailing   ",
    "runs  of   spaces\t\ttabs\n\nnewlines\r\nand\u00a0nbsp\u3000ideographic\u2003em space",
    "control\x00chars\x07here\u200bzero\ufeffwidth\ufffdreplacement",
    "Tab\x0bvertical\x0cformfeed\x85nel\u2028line\u2029para",
    "a" * 101,
    "ab" * 50,
    "word " + "x" * 120 + " after",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "e-mail: someone@example.com, price $3.50 (approx.) 100% #hashtag ^caret `tick` ~tilde | pipe",
    "¿Qué? ¡Sí! «quotes» „German“ — em dash … ellipsis",
    "emoji 😀🎉 and symbols ©®™ €£¥",
    "Mixed CaSe WoRdS and ALLCAPS",
    "don't can't won't it's",
    "[CLS] special [SEP] tokens [MASK] in text[PAD]x [unk] [UNK]",
    "   ",
    "numbers 1234567890 3.14159 1,000,000",
    "Ελληνικά κείμενο ΣΊΣΥΦΟΣ",
    "Русский текст Ёлка Йод",
    "العربية مع التشكيل: مَرْحَبًا",
    "हिन्दी पाठ",
    "ﬁne ligature and fullwidth ＡＢＣ１２３",
    "combining e\u0301 vs \u00e9 precomposed",
    "URL https://example.com/path?query=1&x=y#frag",
    "snake_case camelCase kebab-case",
    "private use \ue000 unassigned \u0378 tag \U000e0001 end",
    "math bold 𝐀𝐁𝐂 and Kelvin \u212a ohm \u2126 angstrom \u212b",
    "ǅ titlecase digraph and ﬀ",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
]


def byte_offsets(text: str, start: int, end: int) -> list:
    return [len(text[:start].encode("utf-8")), len(text[:end].encode("utf-8"))]


def main() -> int:
    model_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "models" / "all-MiniLM-L6-v2")
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_dir / "vocab.txt", OUT / "vocab.txt")
    shutil.copy(model_dir / "tokenizer_config.json", OUT / "tokenizer_config.json")
    # The directory holds only vocab.txt and tokenizer_config.json, so the fast tokenizer is built from those.
    from_vocab = BertTokenizerFast.from_pretrained(str(OUT))
    from_json = PreTrainedTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"))
    from_json.backend_tokenizer.no_truncation()
    from_json.backend_tokenizer.no_padding()
    with open(OUT / "cases.jsonl", "w", encoding="utf-8") as f:
        for text in TEXTS:
            enc = from_vocab(text, return_offsets_mapping=True)
            check = from_json.backend_tokenizer.encode(text)
            assert enc["input_ids"] == check.ids, f"vocab.txt and tokenizer.json disagree on {text!r}"
            case = {
                "text": text,
                "utf8_hex": text.encode("utf-8").hex(),
                "ids": enc["input_ids"],
                "offsets": [byte_offsets(text, s, e) for s, e in enc["offset_mapping"]],
                "tokens": from_vocab.convert_ids_to_tokens(enc["input_ids"]),
            }
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    print(f"wrote {len(TEXTS)} cases to {OUT / 'cases.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
