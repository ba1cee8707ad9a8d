#!/usr/bin/env bash
# The one prepared check for a lent GPU (H100 or H200; 15 minutes of device time in all, so this stays under 8):
#   1. builds attnviz (Release: sm_90a machine code and compute_90 PTX) and runs the whole ctest suite, the GPU tests
#      included;
#   2. compute-sanitizer memcheck on small `attnviz run --device cuda` runs (tests/data/gpt2-tiny), racecheck on the
#      small attention kernel tests;
#   3. bench/gpu_kernels.sh (attention kernels vs PyTorch SDPA, the copy and GEMM ceilings), the same benchmark at
#      n = 8192 from builds with one compile-time alternative each (the A/B: by default the dump's maps copy with Q
#      from shared memory, 4 blocks an SM at D = 64 and 3 at D = 128), and
#      Nsight Compute on one launch of each attention kernel (ncu, when installed; its report is in logs.tar.gz);
#   4. bench/gpu_e2e.py, end to end: GPT-2-small shape (random weights, weights/gen_gpt2_small.py), 1024 tokens,
#      every layer's and head's P captured and written, attnviz (fp32 and bf16) against Hugging Face eager attention
#      with output_attentions=True on the same GPU, and their agreement;
#   5. bench/long_prompt.py: one bf16 run of SmolLM2-135M's shape (random weights) on a 100,000-token prompt with
#      pooled maps, column sums and the last rows of every head captured, its time, device memory and invariants;
# and prints a short table LAST. $OUT (./device-out when OUT is unset) receives at most 8 files, as the run tool
# brings back no more: summary.txt (the table), ctest.log, memcheck.log, the two GPU suites' verbose logs, gpu_e2e.log,
# logs.tar.gz (every step's log), and gpu_kernels.sh's gpu_kernels.jsonl.
#
# Usage:
#   bench/device_check.sh               on the device machine (the run tool: carry .device, see --fetch-deps)
#   bench/device_check.sh --cpu-only    on a machine without a GPU: the build and ctest steps only (GPU tests skip)
#   bench/device_check.sh --fetch-deps  here, before the device call: fills .device/ (git-ignored) with what the
#                                       device image lacks: the Debian packages of the build's C libraries (Criterion,
#                                       cJSON, OpenBLAS, PCRE2, utf8proc, zlib, stb, pkgconf) and ../shared/data/
#                                       gpt2-tokenizer. The device machine gets only the repository, so name
#                                       ".device" in the run call's carry.
# Settings (environment): DEVICE_CHECK_JOBS (build and ctest parallelism, default nproc), DEVICE_CHECK_TOKENS (1024),
# DEVICE_CHECK_CARRIED=1 (build against the carried packages even where the system has the libraries: to try the
# carry here), DEVICE_CHECK_BUDGET_S (480: the whole check), DEVICE_CHECK_E2E=0 (skip step 4), DEVICE_CHECK_AB
# (the A/B builds of step 3, in order: "maps_q_shared" by default, "maps_q_shared wgmma_all" for both, "" for none),
# GPU_E2E_RUNS (5), DEVICE_CHECK_LONG_TOKENS (100000; 0 skips step 5),
# DEVICE_CHECK_COMMIT (for the table where the copy sent to the device machine has no .git).
# The step functions run through `bash -c` under timeout, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
mode=full
case "${1:-}" in
--cpu-only) mode=cpu ;;
--fetch-deps) mode=fetch ;;
"") ;;
*)
    echo "usage: $0 [--cpu-only | --fetch-deps]" >&2
    exit 2
    ;;
esac

OUT=${OUT:-$repo/device-out}
jobs=${DEVICE_CHECK_JOBS:-$(nproc)}
tokens=${DEVICE_CHECK_TOKENS:-1024}
long_tokens=${DEVICE_CHECK_LONG_TOKENS:-100000}
build=$repo/build-device
work=${TMPDIR:-/tmp}/attnviz-device-check
logs=$work/logs
deps=$repo/.device
started=$(date +%s)
# The steps run as `bash -c` under timeout, so they see these as environment.
export repo build work logs deps jobs tokens

say() { printf '[device_check %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The table printed at the end: one row per step, "name|status|seconds|note".
rows=()
record() { rows+=("$1|$2|$3|$4"); }

# run_step NAME TIMEOUT_S CMD...: runs CMD (a command or a function of this script) with its output in
# $logs/NAME.log; returns CMD's status.
run_step() {
    local name=$1 limit=$2
    shift 2
    say "$name: $*"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    STEP_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "$name: TIMED OUT after ${limit}s"; fi
    say "$name: exit $rc in ${STEP_SECONDS}s"
    return "$rc"
}

status_word() { if [ "$1" -eq 0 ]; then echo ok; elif [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; then echo TIMEOUT; else echo "FAIL($1)"; fi; }

# --- --fetch-deps: here, before the call ----------------------------------------------------------------------------

# Debian 12 packages of the C libraries the build links (runtime libraries and headers) and of pkgconf. Built for
# glibc 2.36, so they load on the device image's newer glibc; they are unpacked into .device/root there, never into /.
dep_packages=(pkgconf pkgconf-bin libpkgconf3
    libcriterion-dev libcriterion3 libffi8 libgit2-1.5 libnanomsg5 libhttp-parser2.9 libmbedcrypto7 libmbedtls14
    libmbedx509-1 libssh2-1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2
    libcjson-dev libcjson1 libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread libgfortran5
    libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
    libstb-dev libstb0 zlib1g-dev zlib1g)
# The pkg-config modules CMakeLists.txt and tests/CMakeLists.txt ask for (keep in step with dep_packages).
pc_modules=(criterion libcjson openblas libpcre2-8 libutf8proc zlib)

fetch_deps() {
    mkdir -p "$deps/debs" "$deps/shared/data"
    (cd "$deps/debs" && apt-get download "${dep_packages[@]}") || return 1
    local tok=$repo/../shared/data/gpt2-tokenizer
    if [ -d "$tok" ]; then
        rm -rf "$deps/shared/data/gpt2-tokenizer"
        cp -r "$tok" "$deps/shared/data/"
    else
        say "warning: $tok not found; the GPT-2-small benchmark checkpoint will lack its tokenizer"
    fi
    grep -qx '/.device/' "$repo/.gitignore" 2>/dev/null || grep -qx '/.device/' "$repo/.git/info/exclude" 2>/dev/null ||
        echo '/.device/' >>"$repo/.git/info/exclude"
    du -sh "$deps"
}

if [ "$mode" = fetch ]; then
    fetch_deps
    exit $?
fi

# --- environment ----------------------------------------------------------------------------------------------------

[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"

# Uses the carried packages when the machine lacks the libraries. Nothing is installed and LD_LIBRARY_PATH stays as
# it was (Debian's libraries must not shadow the image's for python3 or cmake): the build records the carried
# library folders as DT_RPATH, which also covers the libraries' own dependencies (libcriterion -> libgit2 -> ...).
use_carried_deps() {
    if [ "${DEVICE_CHECK_CARRIED:-0}" != 1 ] && command -v pkg-config >/dev/null &&
        pkg-config --exists "${pc_modules[@]}" 2>/dev/null &&
        [ -f /usr/include/stb/stb_image_write.h ]; then
        say "build libraries: the system's"
        return 0
    fi
    if ! compgen -G "$deps/debs/*.deb" >/dev/null; then
        say "build libraries missing and no .device/debs carried (run bench/device_check.sh --fetch-deps here first)"
        return 1
    fi
    # Outside the repository: unpacked they are several times the 64 MiB a device call may carry.
    local root=$work/carried-root
    rm -rf "$root" && mkdir -p "$root"
    for f in "$deps"/debs/*.deb; do dpkg-deb -x "$f" "$root" || return 1; done
    local lib=$root/usr/lib/x86_64-linux-gnu
    # Debian 12 merges /lib into /usr/lib, and zlib1g-dev's libz.so points at the absolute /lib/.../libz.so.1.2.13,
    # which the device image (another zlib) lacks: ld then falls back to the non-PIC libz.a. Merge and relink inside.
    if [ -d "$root/lib/x86_64-linux-gnu" ]; then
        cp -a "$root/lib/x86_64-linux-gnu/." "$lib/" && rm -rf "${root:?}/lib"
    fi
    local link
    while IFS= read -r link; do
        ln -sf "$(basename "$(readlink "$link")")" "$link"
    done < <(find "$lib" -maxdepth 1 -type l -lname '/*')
    # What Debian's postinst scripts would have made: the alternatives link of OpenBLAS.
    ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
    # Criterion's private requirements matter only to static links; their .pc files are not carried.
    sed -i '/^Requires.private/d; /^Libs.private/d' "$lib/pkgconfig/criterion.pc"
    # pkgconf finds its own library through a wrapper, not through the environment of every other program.
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$lib" "$root/usr/bin/pkgconf" >"$root/pkg-config"
    chmod +x "$root/pkg-config"
    export PKG_CONFIG_PATH="$lib/pkgconfig:$lib/openblas-pthread/pkgconfig:$root/usr/share/pkgconfig"
    export PKG_CONFIG_LIBDIR="$PKG_CONFIG_PATH"
    export PKG_CONFIG_SYSROOT_DIR="$root"
    export CARRIED_ROOT="$root" CARRIED_LIB="$lib"
    say "build libraries: carried packages unpacked into $root"
    "$root/pkg-config" --cflags --libs "${pc_modules[@]}"
}

# Tests and the benchmark read ../shared/data/gpt2-tokenizer; the device machine gets only the repository.
use_carried_shared() {
    if [ ! -e "$repo/../shared" ] && [ -d "$deps/shared" ]; then
        ln -s "$deps/shared" "$repo/../shared" && say "../shared -> .device/shared"
    fi
    if [ -d "$repo/../shared/data/gpt2-tokenizer" ]; then
        export AV_GPT2_TOKENIZER="$repo/../shared/data/gpt2-tokenizer"
    fi
}

describe_machine() {
    {
        date -u
        uname -a
        git -C "$repo" rev-parse HEAD 2>/dev/null
        git -C "$repo" status --short 2>/dev/null | head -50
        nvidia-smi 2>&1
        nvcc --version 2>&1
        cmake --version 2>&1 | head -1
        python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1
    } >"$logs/machine.log"
}

# --- build and tests ------------------------------------------------------------------------------------------------

# configure DIR [cmake options...]: a Release build directory, fresh, against the carried libraries when there are.
configure() {
    local dir=$1 carried=()
    shift
    if [ -n "${CARRIED_ROOT:-}" ]; then
        carried=(-DPKG_CONFIG_EXECUTABLE="$CARRIED_ROOT/pkg-config" -DCMAKE_PREFIX_PATH="$CARRIED_ROOT/usr"
            -DCMAKE_BUILD_RPATH="$CARRIED_LIB;$CARRIED_LIB/openblas-pthread"
            -DCMAKE_EXE_LINKER_FLAGS="-Wl,--disable-new-dtags" -DCMAKE_SHARED_LINKER_FLAGS="-Wl,--disable-new-dtags")
    fi
    # Fresh each time: a cache from an earlier call on a warm machine keeps library paths found then.
    rm -rf "$dir"
    # The tests' numpy checks want the python3 that has numpy; the device image's /usr/bin/python3 has none.
    cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DAV_PYTHON="$(command -v python3)" "${carried[@]}" "$@"
}
# The project's default architectures: sm_90a machine code (the pooling pass's S at D = 64 by wgmma) and compute_90
# PTX.
configure_and_build() { configure "$build" && cmake --build "$build" -j"$jobs"; }

# The A/B builds: the same kernels with one CMake option each, benchmarked at n = 8192 beside the main build's numbers,
# rows tagged "build": NAME. maps_q_shared (AV_PROBS_MAPS_Q_SHARED): the maps copy, the dump's, reads Q from shared
# memory and its 16-bit maps fit 4 blocks an SM at D = 64 and 3 at D = 128 (one K buffer), where the default holds Q
# in registers at 3 and 2 (probs_q_in_registers, probs_blocks_per_sm, probs_k_buffers);
# wgmma_all (AV_WGMMA_SCORES_ALL): S by wgmma in every probability kernel copy, not only the pooling at D = 64
# (scores_by_wgmma).
ab_option() {
    case $1 in
    maps_q_shared) echo AV_PROBS_MAPS_Q_SHARED ;;
    wgmma_all) echo AV_WGMMA_SCORES_ALL ;;
    *) return 1 ;;
    esac
}
ab_build() {
    local name=$1 dir=$work/build-$1 option
    option=$(ab_option "$name") || { echo "unknown A/B build $name"; return 2; }
    configure "$dir" -D"$option"=ON && cmake --build "$dir" -j"$jobs" --target bench_attention &&
        "$dir/bench_attention" --quick | sed "s/^{/{\"build\": \"$name\", /" | tee "$logs/ab_$name.jsonl"
}
# One line: the forward, the packed fp16 dump and the pooled pass of the main build and A/B build NAME, n = 8192.
ab_note() {
    python3 - "$work/gpu_kernels.jsonl" "$logs/ab_$1.jsonl" "$1" <<'PY' 2>/dev/null || echo "see ab_$1.log"
import json, sys
def rows(path):
    return [json.loads(l) for l in open(path) if l.startswith("{") and "8192" in l]
def pick(rs, name):
    return [r for r in rs if r["name"] == name]
out = []
for label, path in (("default", sys.argv[1]), (sys.argv[3], sys.argv[2])):
    rs = rows(path)
    fwd = ", ".join(f"{r['median']:.0f}" for r in pick(rs, "forward_tflops"))
    dump = ", ".join(f"{r['median']:.0f}" for r in pick(rs, "probs_packed_fp16"))
    pool = ", ".join(f"{r['median'] / r['baseline']:.2f}x" for r in pick(rs, "pooled_512_pass"))
    out.append(f"{label}: forward TFLOP/s {fwd}; dump GB/s {dump}; pooled/fwd {pool}")
print("; ".join(out))
PY
}

# ptxas -v prints every kernel's registers and spills; a spilling kernel is worth knowing about.
spill_note() {
    [ -f "$logs/build.log" ] || return 0
    local spills
    spills=$(grep -cE '[1-9][0-9]* bytes spill (stores|loads)' "$logs/build.log")
    if [ "$spills" -gt 0 ]; then echo "$spills ptxas lines report spills"; else echo "no spills"; fi
}

ctest_note() {
    local summary
    summary=$(grep -E 'tests passed|tests failed' "$logs/ctest.log" | tail -1)
    echo "${summary:-no summary}"
}

# --- memcheck -------------------------------------------------------------------------------------------------------

memcheck() {
    local out=$work/memcheck
    rm -rf "$out" && mkdir -p "$out"
    local rc=0 model args
    # gpt2-tiny (head size 16) takes the plain attention path; gpt2-tiny-hs64 in bf16 the flash kernels, the last run
    # with the --capture reductions computed on the device.
    for run in "gpt2-tiny --dtype fp32 --attn-dtype fp32" "gpt2-tiny --dtype bf16 --attn-dtype fp16" \
        "gpt2-tiny-hs64 --dtype bf16 --attn-dtype fp16" "gpt2-tiny-hs64 --dtype bf16 --attn-dtype fp32" \
        "gpt2-tiny-hs64 --dtype bf16 --capture rows:4,colsum,pool:8,headmean"; do
        model=${run%% *} args=${run#* }
        [ -d "$repo/tests/data/$model" ] || continue
        # shellcheck disable=SC2086 # ARGS is a list of options
        compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check no \
            "$build/attnviz" run --device cuda $args --model "$repo/tests/data/$model" \
            --prompt "Hello world! The quick brown fox jumps over the lazy dog." --out "$out/run-${run// /_}" || rc=$?
    done
    return "$rc"
}

# Shared-memory races (and barrier misuse) in the attention kernels: the small GPU tests of the flash forward and the
# probability kernel, every block checked.
racecheck() {
    local t rc=0
    for t in forward_gqa_batched_both_dtypes head_mean_and_max_gqa rows_colsums_pooled_ragged; do
        compute-sanitizer --tool racecheck --error-exitcode 99 "$build/tests/test_cuda_attention" --jobs 1 \
            --filter "cuda_attention/$t" || rc=$?
    done
    return "$rc"
}

# Nsight Compute on one launch of each attention kernel at the Llama-3-8B shape, n = 8192, and of the dump at GPT-2's
# (head dim 64): where the time goes, for the next round of tuning. bench --quick runs GPT-2 then Llama at that n, per
# model 49 forward launches and 69 of the probability kernel, the last 23 of those the fp16 packed dump. Reports in
# ncu_profile.log.
ncu_profile() {
    local bin=$work/bench_attention rc=0
    [ -x "$bin" ] || { echo "ncu_profile: $bin missing (gpu_kernels did not build it)"; return 1; }
    local sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats
        --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis)
    ncu --kernel-name regex:attention_fwd_kernel --launch-skip 54 --launch-count 1 "${sections[@]}" "$bin" --quick ||
        rc=$?
    ncu --kernel-name regex:attention_probs_kernel --launch-skip 130 --launch-count 1 "${sections[@]}" "$bin" \
        --quick || rc=$?
    ncu --kernel-name regex:attention_probs_kernel --launch-skip 60 --launch-count 1 "${sections[@]}" "$bin" \
        --quick || rc=$?
    return "$rc"
}

# --- end-to-end benchmark -------------------------------------------------------------------------------------------

checkpoint=$work/gpt2-small-random
prompt=$work/prompt-$tokens.txt

# T words that GPT-2's BPE keeps as one token each after a space, as bench/cpu_ab.py does.
write_prompt() {
    python3 - "$prompt" "$tokens" <<'EOF'
import sys
words = (" the", " of", " and", " to", " in", " a", " is", " that", " for", " it", " was", " on", " with", " as",
         " be", " at", " by", " this", " from", " or", " an", " are", " not", " but", " have")
path, T = sys.argv[1], int(sys.argv[2])
open(path, "w", encoding="utf-8").write("".join(words[i % len(words)] for i in range(T)))
EOF
}

prepare_benchmark() {
    rm -rf "$checkpoint"
    python3 "$repo/weights/gen_gpt2_small.py" --out "$checkpoint" && write_prompt &&
        "$build/attnviz" tokenize --model "$checkpoint" --prompt-file "$prompt" >"$work/prompt-ids.json" &&
        python3 -c "import json,sys; n=len(json.load(open(sys.argv[1]))); sys.exit(0 if n == int(sys.argv[2]) else print(f'{n} tokens, want {sys.argv[2]}') or 1)" \
            "$work/prompt-ids.json" "$tokens"
}

# --- the run --------------------------------------------------------------------------------------------------------

export -f say configure configure_and_build ab_option ab_build memcheck racecheck ncu_profile write_prompt \
    prepare_benchmark
export checkpoint prompt
rm -rf "$logs" && mkdir -p "$logs" "$OUT"
# What an earlier run left in $OUT must not pass for this run's (the device tool empties it; a local run may not).
out_files=(summary.txt ctest.log memcheck.log test_cuda_kernels.log test_cuda_model.log gpu_e2e.log logs.tar.gz)
for f in "${out_files[@]}"; do rm -f "${OUT:?}/$f"; done
describe_machine
use_carried_shared
if ! use_carried_deps >"$logs/deps.log" 2>&1; then
    cat "$logs/deps.log"
    record deps FAIL 0 "build libraries unavailable, see deps.log"
fi
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
say "mode $mode; card: ${card:-none}; logs in $OUT"

# Every step's timeout is cut to what is left of the budget, and a step that would get under 30 s is skipped, so
# the whole check ends inside DEVICE_CHECK_BUDGET_S (480 s: the lease's 15 minutes leave room for the machine's
# start and one rerun).
budget=${DEVICE_CHECK_BUDGET_S:-480}
step_in_budget() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - ($(date +%s) - started)))
    if [ $left -lt 30 ]; then
        say "$name: skipped, ${left}s of the budget left"
        STEP_SECONDS=0
        return 200
    fi
    [ "$limit" -gt $((left - 5)) ] && limit=$((left - 5))
    run_step "$name" "$limit" "$@"
}
# status_word, with "skipped" for step_in_budget's 200.
step_status() { if [ "$1" -eq 200 ]; then echo skipped; else status_word "$1"; fi; }

step_in_budget build 300 configure_and_build
rc=$?
record build "$(step_status $rc)" "$STEP_SECONDS" "sm_90a + compute_90 PTX, Release; $(spill_note)"
built=$rc

if [ $built -eq 0 ]; then
    # The GPU suites run on their own, verbose: their max errors (cr_log_info) go into the logs for bench/RESULTS.md.
    # The installed binaries of install_check cannot find carried libraries (no system install of them there).
    excluded='^test_cuda_(kernels|model|flash|reductions|attention)$' skipped_note=""
    if [ -n "${CARRIED_ROOT:-}" ]; then
        excluded='^(test_cuda_(kernels|model|flash|reductions|attention)|install_check)$'
        skipped_note="; install_check not run (carried libraries)"
    fi
    step_in_budget ctest 240 ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 200 -E "$excluded"
    rc=$?
    record ctest "$(step_status $rc)" "$STEP_SECONDS" \
        "$(ctest_note) (the GPU suites below)$skipped_note"
    for name in test_cuda_kernels test_cuda_model test_cuda_flash test_cuda_reductions test_cuda_attention; do
        step_in_budget "$name" 200 "$build/tests/$name" --verbose --jobs 1
        rc=$?
        record "$name" "$(step_status $rc)" "$STEP_SECONDS" "$(grep -ohE 'Tested: .*' "$logs/$name.log" 2>/dev/null | tail -1)"
    done
fi

if [ "$mode" = full ] && [ $built -eq 0 ]; then
    step_in_budget memcheck 120 memcheck
    rc=$?
    record memcheck "$(step_status $rc)" "$STEP_SECONDS" \
        "$(grep -ohE 'ERROR SUMMARY: [0-9]+ errors?' "$logs/memcheck.log" 2>/dev/null | paste -sd';' -)"

    step_in_budget racecheck 90 racecheck
    rc=$?
    record racecheck "$(step_status $rc)" "$STEP_SECONDS" \
        "$(grep -ohE 'RACECHECK SUMMARY: [0-9]+ hazards?[^,]*' "$logs/racecheck.log" 2>/dev/null | sort | uniq -c |
            sed 's/^ *//' | paste -sd';' -)"

    if [ -f "$repo/bench/gpu_kernels.sh" ]; then
        step_in_budget gpu_kernels 150 bash "$repo/bench/gpu_kernels.sh"
        rc=$?
        record gpu_kernels "$(step_status $rc)" "$STEP_SECONDS" "$(tail -1 "$logs/gpu_kernels.log" 2>/dev/null)"
        for name in ${DEVICE_CHECK_AB-maps_q_shared}; do
            step_in_budget "ab_$name" 120 ab_build "$name"
            rc=$?
            record "ab_$name" "$(step_status $rc)" "$STEP_SECONDS" "$(ab_note "$name")"
        done
        if command -v ncu >/dev/null; then
            step_in_budget ncu_profile 120 ncu_profile
            rc=$?
            record ncu_profile "$(step_status $rc)" "$STEP_SECONDS" "in logs.tar.gz: logs/ncu_profile.log"
        fi
    fi
    if [ "${DEVICE_CHECK_E2E:-1}" = 1 ]; then
        step_in_budget bench_prepare 120 prepare_benchmark
        prepared=$?
        record bench_prepare "$(step_status $prepared)" "$STEP_SECONDS" "GPT-2-small random, $tokens tokens"
        if [ $prepared -eq 0 ]; then
            step_in_budget gpu_e2e 300 python3 "$repo/bench/gpu_e2e.py"
            rc=$?
            record gpu_e2e "$(step_status $rc)" "$STEP_SECONDS" "table at the end of gpu_e2e.log"
        fi
    fi
    if [ "$long_tokens" -gt 0 ]; then
        step_in_budget long_prompt 150 python3 "$repo/bench/long_prompt.py" --attnviz "$build/attnviz" \
            --tokens "$long_tokens" --scratch "$work/long" --shared "$repo/../shared"
        rc=$?
        record long_prompt "$(step_status $rc)" "$STEP_SECONDS" "$(grep -h '^{' "$logs/long_prompt.log" 2>/dev/null | tail -1)"
    fi
fi

# The end of every step's log, the logs into $OUT, then the table, last.
for f in "$logs"/*.log; do
    case "$(basename "$f")" in machine.log | build.log) continue ;; esac
    echo "--- $(basename "$f") (last lines)"
    tail -n 4 "$f"
done
tar -czf "$OUT/logs.tar.gz" -C "$work" logs
for f in "${out_files[@]}"; do
    [ -f "$logs/$f" ] && cp "$logs/$f" "$OUT/"
done
failed=0
{
    echo
    echo "device_check ($mode): card ${card:-none}, commit ${DEVICE_CHECK_COMMIT:-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null)}," \
        "$(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - started)) s"
    printf '%-22s %-9s %8s  %s\n' step status seconds note
    for row in "${rows[@]}"; do
        IFS='|' read -r name status seconds note <<<"$row"
        printf '%-22s %-9s %8s  %s\n' "$name" "$status" "$seconds" "$note"
    done
} | tee "$OUT/summary.txt"
for row in "${rows[@]}"; do
    IFS='|' read -r _ status _ <<<"$row"
    [ "$status" = ok ] || failed=1
done
exit $failed
