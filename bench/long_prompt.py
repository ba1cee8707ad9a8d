#!/usr/bin/env python3
"""Long prompts end to end: one `attnviz run` of a prompt of exactly --tokens tokens, reductions captured, no full maps.

The model is SmolLM2-135M's shape (weights/gen_llama_small.py: random weights, 30 layers, 9 query heads on 3
key/value heads, its position limit raised to --positions), generated once under --scratch. The run captures
--capture (default pool:64,colsum,rows:8: every layer and head) with --png none --viewer off, so full T x T maps are
never made: on the CPU its attention takes the reductions block by block, on the GPU the flash kernels do (--dtype
bf16). No baseline: Hugging Face eager with output_attentions=True holds every layer's maps (30 x 9 x T^2 floats,
10.8 TB at 100k tokens) and runs out of memory at a few thousand tokens (bench/RESULTS.md).

Measured: the process's wall time, its peak RSS, and on cuda the rise of the device's used memory while it ran
(NVML or nvidia-smi, every 10 ms). Checked, so that a fast wrong run cannot pass: meta.json names the tokens and
where the reductions ran, every pooled row sums to 1 and every head's column sums add up to T (within --tolerance:
float32 sums of bf16 products on the GPU), and the last rows sum to 1. On the CPU the record names the OpenBLAS
kernels an inherited OPENBLAS_CORETYPE forces (or "as detected").

Usage: python3 bench/long_prompt.py --attnviz BIN [--tokens 100000] [--device cuda] [--dtype bf16] [--threads N]
                                    [--positions 131072] [--scratch DIR] [--shared DIR] [--capture LIST]
Prints one JSON line with the measurement; exits 1 when a check fails.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

from cpu_ab import run_measured, thread_env, write_prompt_of
from gpu_e2e import DeviceMemory, run_sampled

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--attnviz", required=True, help="the attnviz CLI binary")
    p.add_argument("--tokens", type=int, default=100000)
    p.add_argument("--positions", type=int, default=131072, help="the generated model's position limit")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="bf16", help="cuda only; the CPU runs fp32")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--capture", default="pool:64,colsum,rows:8")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="relative, for the sums; default 1e-4 on the CPU, 1e-2 on cuda")
    p.add_argument("--scratch", default=os.path.join(REPO, ".bench-cache", "long"))
    p.add_argument("--shared", default=os.path.join(REPO, "..", "shared"), help="holds data/gpt2-tokenizer")
    args = p.parse_args()
    args.tolerance = args.tolerance or (1e-4 if args.device == "cpu" else 1e-2)
    return args


def log(msg):
    print(f"[long_prompt] {msg}", file=sys.stderr, flush=True)


def prepare_model(args):
    args.model = os.path.join(args.scratch, f"llama-small-{args.positions}")
    if os.path.exists(os.path.join(args.model, "generator.json")):
        return
    log(f"writing the random-weight checkpoint to {args.model}")
    subprocess.run([sys.executable, os.path.join(REPO, "weights", "gen_llama_small.py"), "--out", args.model,
                    "--shared", args.shared, "--positions", str(args.positions)], check=True)


def run(args, prompt, out):
    cmd = [args.attnviz, "run", "--model", args.model, "--prompt-file", prompt, "--out", out, "--device", args.device,
           "--capture", args.capture, "--png", "none", "--viewer", "off", "--threads", str(args.threads)]
    if args.device == "cuda":
        cmd += ["--dtype", args.dtype]
    env, log_path = thread_env(args.threads), os.path.join(args.scratch, "run.log")
    if args.device == "cpu":
        wall, rss_kib, _ = run_measured(cmd, env, log_path)
        return {"wall_s": round(wall, 2), "peak_rss_mib": round(rss_kib / 1024)}
    mem = DeviceMemory()
    wall, device_bytes, _ = run_sampled(cmd, env, log_path, mem)
    return {"wall_s": round(wall, 2), "device_peak_mib": round(device_bytes / 2**20), "device_memory": mem.source}


def worst_relative(values, want):
    return float(np.max(np.abs(values.astype(np.float64) - want) / want))


def check_outputs(args, out):
    """Largest relative error of each invariant over every layer and head; raises when one is past the tolerance."""
    meta = json.load(open(os.path.join(out, "meta.json"), encoding="utf-8"))
    T = meta["n_tokens"]
    if T != args.tokens:
        raise RuntimeError(f"meta.json: {T} tokens, want {args.tokens}")
    where = meta["captured"].get("reductions")
    if where not in ("attention", "device"):
        raise RuntimeError(f"meta.json: reductions computed on the {where}, not next to attention")
    errors = {"pool_rows": 0.0, "colsum_total": 0.0, "rows": 0.0}
    for layer in sorted(glob.glob(os.path.join(out, "attention", "layer_*_pool.npy"))):
        base = layer[: -len("pool.npy")]
        errors["pool_rows"] = max(errors["pool_rows"], worst_relative(np.load(layer).sum(-1), 1.0))
        errors["colsum_total"] = max(errors["colsum_total"],
                                     worst_relative(np.load(base + "colsum.npy").astype(np.float64).sum(-1), T))
        errors["rows"] = max(errors["rows"], worst_relative(np.load(base + "rows.npy").sum(-1), 1.0))
    bad = {k: v for k, v in errors.items() if v > args.tolerance}
    if bad:
        raise RuntimeError(f"past the tolerance {args.tolerance}: {bad}")
    return {"reductions": where, "max_rel_error": {k: float(f"{v:.2e}") for k, v in errors.items()}}


def main() -> int:
    args = parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    prepare_model(args)
    prompt, out = os.path.join(args.scratch, f"prompt-{args.tokens}.txt"), os.path.join(args.scratch, "out")
    write_prompt_of(args, prompt, args.tokens)
    log(f"{args.tokens} tokens on {args.device}, --capture {args.capture}")
    record = {"tokens": args.tokens, "device": args.device, "dtype": args.dtype if args.device == "cuda" else "fp32",
              "threads": args.threads, "capture": args.capture}
    if args.device == "cpu":  # an inherited OPENBLAS_CORETYPE picks the CPU products' kernels (1.3x here)
        record["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "as detected")
    record.update(run(args, prompt, out))
    try:
        record.update(check_outputs(args, out))
    except RuntimeError as e:
        print(json.dumps(record))
        log(f"FAILED: {e}")
        return 1
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
