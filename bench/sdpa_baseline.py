#!/usr/bin/env python3
"""PyTorch SDPA (flash backend) forward on the shapes of bench/bench_attention.cu, for the forward's speed target.

One JSON line per shape, the schema of bench_attention: CUDA-event median over 20 repetitions after warm-up, three
rotating input sets. Needs torch with CUDA (the device machine's pyenv python3).
Usage: python3 bench/sdpa_baseline.py [--quick]
"""
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

WARMUP, REPS, SETS = 3, 20, 3


def time_ms(run):
    for i in range(WARMUP):
        run(i)
    torch.cuda.synchronize()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(REPS)]
    for i, (start, stop) in enumerate(pairs):
        start.record()
        run(i)
        stop.record()
    torch.cuda.synchronize()
    return sorted(start.elapsed_time(stop) for start, stop in pairs)


# The shapes of bench/bench_attention.cu (its shape strings, so the two join): GPT-2 small and Llama-3-8B, one sequence.
MODELS = [("gpt2-small", 12, 12, 64, 65536), ("llama3-8b", 32, 8, 128, 32768)]
LENGTHS = (512, 2048, 4096, 8192, 32768, 65536)


def main():
    quick = "--quick" in sys.argv
    for name, heads, kv_heads, d, max_n in MODELS:
        for n in (8192,) if quick else (n for n in LENGTHS if n <= max_n):
            batch = 1
            # Grouped-query attention: K and V are repeated to the query head count once, outside the timed region,
            # so the flash backend runs on every torch version (ours reads the shared K and V directly).
            sets = []
            for _ in range(SETS):
                q = torch.rand(batch, heads, n, d, device="cuda", dtype=torch.bfloat16) * 2 - 1
                k, v = (torch.rand(batch, kv_heads, n, d, device="cuda", dtype=torch.bfloat16) * 2 - 1
                        for _ in range(2))
                repeat = heads // kv_heads
                sets.append((q, k.repeat_interleave(repeat, 1), v.repeat_interleave(repeat, 1)))

            def run(i):
                q, k, v = sets[i % SETS]
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    F.scaled_dot_product_attention(q, k, v, is_causal=True)

            ms = time_ms(run)
            median = statistics.median(ms)
            flops = 4.0 * batch * heads * n * n * d / 2.0
            shape = f"{name} H={heads} KV={kv_heads} n={n} d={d} causal"
            print(json.dumps({"name": "sdpa_flash_forward", "shape": shape, "dtype": "bf16", "median": median,
                              "min": ms[0], "max": ms[-1], "unit": "ms", "baseline": 0, "ratio": 0, "floor": 0,
                              "pct_of_floor": 0, "tflops": flops / (median * 1e9), "torch": torch.__version__}),
                  flush=True)
            del sets


if __name__ == "__main__":
    main()
