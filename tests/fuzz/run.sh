#!/usr/bin/env bash
# A fuzzing campaign: builds the targets (build.sh), seeds their corpora from the fixtures (seed.py) and the
# committed inputs (corpus/<target>/), then runs each target for FUZZ_SECONDS (default 120) on every core.
# New crashes land in build-fuzz/crashes/<target>/; a crash is fixed, then its input is committed to
# corpus/<target>/, where the test suite replays it (tests/fuzz/README.md).
# Usage: bash tests/fuzz/run.sh [TARGET ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bash "$root/tests/fuzz/build.sh"
out="$root/build-fuzz"
python3 "$root/tests/fuzz/seed.py" "$out/seeds"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_files fuzz_encode)
seconds=${FUZZ_SECONDS:-120}
status=0
for target in "${targets[@]}"; do
  corpus="$out/corpus/$target" crashes="$out/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  seeds=("$out/seeds/$target")
  [ -d "$root/tests/fuzz/corpus/$target" ] && seeds+=("$root/tests/fuzz/corpus/$target")
  echo "== $target: ${seconds} s =="
  # -fork keeps going after a crash and saves every distinct one; the summary line says how many.
  (cd "$crashes" && ASAN_OPTIONS=detect_leaks=1 "$out/$target" -fork="$(nproc)" -ignore_crashes=1 \
    -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=4096 "$corpus" "${seeds[@]}" \
    >"$out/$target.log" 2>&1) || true
  tail -n 3 "$out/$target.log"
  found=$(find "$crashes" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "$target: $found inputs in $crashes"
  [ "$found" -eq 0 ] || status=1
done
exit $status
