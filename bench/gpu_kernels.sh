#!/usr/bin/env bash
# Kernel benchmarks for a lent GPU (bench/device_check.sh calls this when it exists): builds bench/bench_attention.cu
# (the bench_attention target of the CUDA build, against its libattnviz.so), runs it, runs the PyTorch SDPA flash
# baseline when torch is importable, and prints forward vs SDPA last. JSON lines go to $OUT/gpu_kernels.jsonl as well.
# Usage: bench/gpu_kernels.sh [--quick]     (build dir: $build as device_check.sh exports it, else build-device)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${build:-$repo/build-device}
scratch=${work:-${TMPDIR:-/tmp}/attnviz-gpu-kernels}
mkdir -p "$scratch"
bin=$scratch/bench_attention
results=$scratch/gpu_kernels.jsonl

if [ ! -f "$build/libattnviz.so" ]; then
    echo "gpu_kernels: $build/libattnviz.so missing; build the project first (cmake --build $build)" >&2
    exit 1
fi
cmake --build "$build" --target bench_attention >/dev/null
cp "$build/bench_attention" "$bin"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader || true

"$bin" "$@" | tee "$results"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    python3 "$repo/bench/sdpa_baseline.py" "$@" | tee -a "$results"
else
    echo "gpu_kernels: no torch with CUDA here; SDPA baseline skipped"
fi
if [ -n "${OUT:-}" ]; then cp "$results" "$OUT/gpu_kernels.jsonl"; fi

# forward vs SDPA (target >= 1.0: SDPA time over ours), P dump vs copy bandwidth, pooling vs forward: last.
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
by = {(r["name"], r["shape"]): r for r in rows}
# The dump against its parts timed alone: its bytes written by memset (the write ceiling), the same writes in its
# order at its blocks an SM (write_tile_order; and in steps of 256 keys), and S and P with next to nothing written
# (the pooled pass). Overlap, of the ordered writes and S, P: 1 when the dump takes as long as the slower part, 0 when
# as long as both.
def overlap_note(dump, memset, ordered, ordered_256, scores):
    if not memset or not ordered or not ordered_256 or not scores:
        return ""
    d, w, s = dump["median_ms"], ordered["median_ms"], scores["median_ms"]
    return (f"; memset {memset['median']:.0f} GB/s, its writes alone {ordered['median']:.0f} GB/s "
            f"({ordered_256['median']:.0f} in 256-key steps): {d:.3f} ms against writes {w:.3f} and S, P {s:.3f}, "
            f"overlap {(w + s - d) / min(w, s):.2f}")
for (name, shape), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    if name == "forward":
        sdpa = by.get(("sdpa_flash_forward", shape))
        vs = f"SDPA {sdpa['median']:.3f} ms -> {sdpa['median'] / r['median']:.2f}x" if sdpa else "SDPA n/a"
        print(f"{'forward':32s} {shape:30s} {r['median']:8.3f} ms  {vs} (>= 1.0x); plain {r['ratio']:.2f}x; "
              f"{r['pct_of_floor']:.0f}% of GEMM floor")
    elif name == "probs_packed_fp16":
        parts = (by.get((part, shape)) for part in ("write_ceiling_fp16", "write_tile_order_fp16",
                                                    "write_tile_order_256_fp16", "pooled_512_pass"))
        print(f"{name:32s} {shape:30s} {r['median']:8.1f} GB/s {r['pct_of_floor']:.0f}% of copy (>= 80%)"
              f"{overlap_note(r, *parts)}")
    elif name == "pooled_512_pass":
        print(f"{name:32s} {shape:30s} {r['median']:8.3f} ms  {r['median'] / r['baseline']:.2f}x forward (<= 1.5x)")
PY
