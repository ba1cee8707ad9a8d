#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer (clang) into
# build-fuzz/ at the project root. Usage: bash tests/fuzz/build.sh   (tests/fuzz/README.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build-fuzz"
if ! command -v clang >/dev/null || ! clang -fsanitize=fuzzer -x c -o /dev/null - <<<'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' 2>/dev/null; then
  sudo_cmd=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo_cmd apt-get install -y clang libclang-rt-dev >/dev/null 2>&1 || $sudo_cmd apt-get install -y clang libclang-rt-14-dev >/dev/null
fi
mkdir -p "$out"
flags=(-g -O1 -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -I"$root/include" -I"$root/host" -I"$root/tests/fuzz"
  -DAV_FUZZ_GPT2_TINY_DIR="\"$root/tests/data/gpt2-tiny\""
  -DAV_FUZZ_GPT2_TOKENIZER_DIR="\"$root/../shared/data/gpt2-tokenizer\""
  -DAV_FUZZ_WORDPIECE_DIR="\"$root/tests/data/wordpiece\""
  -DAV_FUZZ_LLAMA3_TOKENIZER_DIR="\"$root/tests/data/tok-llama3\"")
# The loaders and tokenizers, and what they call; no backend, renderer or CLI.
library=(error safetensors config half model model_gpt2 model_bert model_llama tokenizer tokenizer_bpe tokenizer_wordpiece capture viewer
  viewer_page)
cflags=$(pkg-config --cflags libcjson libpcre2-8 libutf8proc)
libs=$(pkg-config --libs libcjson libpcre2-8 libutf8proc)
objects=()
for name in "${library[@]}" ; do
  clang "${flags[@]}" -c "$root/host/$name.c" -o "$out/$name.o" $cflags
  objects+=("$out/$name.o")
done
clang "${flags[@]}" -c "$root/tests/fuzz/fuzz_support.c" -o "$out/fuzz_support.o"
for target in fuzz_safetensors fuzz_config fuzz_tokenizer_files fuzz_encode; do
  clang "${flags[@]/fuzzer-no-link/fuzzer}" "$root/tests/fuzz/$target.c" "${objects[@]}" "$out/fuzz_support.o" \
    $libs -lm -o "$out/$target"
done
echo "fuzz targets in $out"
