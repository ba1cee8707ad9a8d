#!/usr/bin/env bash
# CPU benchmark: `attnviz run` (all layers and heads captured; GPT-2 small's shape, or SmolLM2-135M's Llama shape
# with BENCH_MODEL=llama; 128/512/1024 tokens) against Hugging Face transformers eager attention with
# output_attentions=True on PyTorch CPU, same weights, same threads, alternating A/B. One command from a clean clone:
#
#   bench/cpu_bench.sh
#
# It sets up everything it needs, reusing what a previous run left:
#   .venv-bench/          the baseline's Python (venv + pip: torch, transformers, numpy, safetensors); created with
#                         --system-site-packages, so an interpreter that already has torch is reused as is, and a
#                         bare one downloads torch from PyPI (on Linux that is the CUDA build, several GB, once)
#   build-bench/          attnviz, CMake Release (AV_TESTS=OFF), rebuilt incrementally on every run
#   .bench-cache/         bench/sgemm_rate.c built against OpenBLAS, the random-weight checkpoint (124M GPT-2,
#                         weights/gen_gpt2_small.py, or 135M Llama, weights/gen_llama_small.py; made once),
#                         prompts, outputs and logs of the last run
# and appends one JSON line per measurement to bench/results/cpu-<UTC date>.jsonl, then prints a table.
#
# Settings (environment): BENCH_MODEL (gpt2 or llama), BENCH_THREADS (2), BENCH_RUNS (5), BENCH_TOKENS
# (128,512,1024), BENCH_PYTHON (python3: the interpreter the venv is made from), BENCH_BUILD_DIR (build-bench),
# AV_GPT2_TOKENIZER (gpt2: directory with GPT-2's vocab.json + merges.txt; default ../shared/data/gpt2-tokenizer
# beside the repository, which llama's tokenizer is built from),
# BENCH_TUNED_ENV (auto: a third arm times attnviz with OMP_WAIT_POLICY=PASSIVE, plus OPENBLAS_CORETYPE=SkylakeX or
# Haswell when OpenBLAS falls back to a generic core; none; or "K=V K=V").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
threads=${BENCH_THREADS:-2}
runs=${BENCH_RUNS:-5}
tokens=${BENCH_TOKENS:-128,512,1024}
base_python=${BENCH_PYTHON:-python3}
build_dir=${BENCH_BUILD_DIR:-$repo/build-bench}
cache=$repo/.bench-cache
venv=$repo/.venv-bench
bench_model=${BENCH_MODEL:-gpt2}
case $bench_model in
gpt2) checkpoint=$cache/gpt2-small-random ;;
llama) checkpoint=$cache/llama-small-random ;;
*) echo "cpu_bench: BENCH_MODEL must be gpt2 or llama, not '$bench_model'" >&2; exit 2 ;;
esac

say() { printf '[cpu_bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

setup_venv() {
    if [[ -f $venv/.bench-ready ]]; then
        return
    fi
    say "creating $venv (pip: torch, transformers, numpy, safetensors)"
    "$base_python" -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch transformers numpy safetensors
    "$venv/bin/python" -c 'import torch, transformers, numpy, safetensors'
    touch "$venv/.bench-ready"
}

build_attnviz() {
    say "building attnviz (Release) in $build_dir"
    if ! { cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DAV_TESTS=OFF &&
        cmake --build "$build_dir" -j"$(nproc)" --target attnviz_cli; } >"$cache/build.log" 2>&1; then
        tail -30 "$cache/build.log" >&2
        say "build failed; the whole log is $cache/build.log"
        exit 1
    fi
}

build_sgemm_rate() {
    # shellcheck disable=SC2046 # pkg-config prints several flags on purpose
    cc -O2 -std=c11 "$repo/bench/sgemm_rate.c" $(pkg-config --cflags --libs openblas) -o "$cache/sgemm_rate"
}

make_checkpoint() {
    if [[ -f $checkpoint/generator.json && -f $checkpoint/model.safetensors ]]; then
        return
    fi
    say "writing the random-weight $bench_model checkpoint to $checkpoint"
    if [[ $bench_model == gpt2 ]]; then
        "$venv/bin/python" "$repo/weights/gen_gpt2_small.py" --out "$checkpoint"
    else
        "$venv/bin/python" "$repo/weights/gen_llama_small.py" --out "$checkpoint" --shared "$repo/../shared"
    fi
}

mkdir -p "$cache" "$repo/bench/results"
setup_venv
build_attnviz
build_sgemm_rate
make_checkpoint

export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
"$venv/bin/python" "$repo/bench/cpu_ab.py" \
    --attnviz "$build_dir/attnviz" --model "$checkpoint" --python "$venv/bin/python" \
    --sgemm-bin "$cache/sgemm_rate" --workdir "$cache/run" \
    --results "$repo/bench/results/cpu-$(date -u +%Y-%m-%d).jsonl" \
    --threads "$threads" --runs "$runs" --tokens "$tokens" --tuned-env "${BENCH_TUNED_ENV:-auto}"

# Every run is recorded in bench/RESULTS.md (machine, date, commit, table) unless BENCH_RECORD=0.
if [[ ${BENCH_RECORD:-1} != 0 ]]; then
    {
        printf '\n### %s, commit %s, %s, %s threads, %s\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
            "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$threads" "$bench_model"
        cat "$cache/run/table.md"
    } >>"$repo/bench/RESULTS.md"
    say "recorded in bench/RESULTS.md"
fi

