#!/usr/bin/env python3
"""GPU end to end: `attnviz run --device cuda` against Hugging Face eager output_attentions=True on the same GPU.

GPT-2-small shape (random weights, weights/gen_gpt2_small.py), a prompt of exactly --tokens tokens (1024), all
12 x 12 = 144 attention maps. Four arms, alternated round by round, one process per run, >= 5 runs each:
  attnviz fp32, attnviz bf16   `attnviz run --device cuda --dtype fp32|bf16 --png none --viewer off`: wall time of the process
                               (CUDA start, load, upload, tokenize, forward, every map copied back and written as .npy)
  HF fp32, HF bf16             bench/hf_baseline.py --device cuda: the process (python start, import torch and
                               transformers, load, move to the GPU, tokenize, one forward pass returning the 12
                               attention tensors, np.save of each); its own phase timings come along, among them the
                               warm forward pass alone (median of --hf-repeat extra passes, synchronized)
Peak device memory: for every process, the rise of the device's used memory (NVML, or nvidia-smi) over what was used
before it started, sampled every 10 ms (includes the CUDA context); for HF also torch.cuda.max_memory_allocated.
Before timing, the warm-up runs are checked: ||ours - HF fp32|| / ||HF fp32|| over layers 0 and 11, <= 1e-3 for fp32
and <= 2e-2 for bf16 (HF bf16's own error against HF fp32 is reported beside it).
The floor: forward FLOPs over a large torch.mm rate of this GPU (fp32 without TF32, bf16), measured in this run, and
host<->device traffic (weights up, maps down) over measured pinned-copy bandwidth; the larger of the two.

Usage: python3 bench/gpu_e2e.py [--attnviz BIN] [--model DIR] [--out DIR] [--runs 5] [--tokens 1024]
  --attnviz  default $AV_CLI, else build-device/attnviz or build/attnviz, whichever exists
  --model    default $checkpoint (bench/device_check.sh exports its generated one), else one is generated once under
             <repo>/.bench-cache/gpu/ with weights/gen_gpt2_small.py (GPT-2's tokenizer files when
             $AV_GPT2_TOKENIZER or ../shared/data/gpt2-tokenizer has them, else its synthetic tokenizer)
  --out      when given, gpu_e2e.jsonl and gpu_e2e_table.md are written there (two files; device_check.sh's $OUT
             holds at most 8, so it leaves this out and keeps stdout)
Prints one JSON line per measurement, then the table last. Run logs go under --scratch (<repo>/.bench-cache/gpu/).
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
N_LAYER, N_HEAD, N_EMBD = 12, 12, 768
PROMPT_WORDS = (" the", " of", " and", " to", " in", " a", " is", " that", " for", " it", " was", " on", " with",
                " as", " be", " at", " by", " this", " from", " or", " an", " are", " not", " but", " have")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--attnviz", default=default_cli(), help="attnviz CLI built with CUDA")
    p.add_argument("--out", default="", help="also write gpu_e2e.jsonl and gpu_e2e_table.md here")
    p.add_argument("--runs", type=int, default=int(os.environ.get("GPU_E2E_RUNS", "5")))
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--hf-repeat", type=int, default=3, help="warm forward passes HF times inside its process")
    p.add_argument("--model", default=default_checkpoint(),
                   help="an existing GPT-2-small-shaped checkpoint (default: generate one)")
    p.add_argument("--dtypes", default="fp32,bf16", help="compute dtypes to compare (fp32, bf16)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cpu: a smoke test of this script on a machine without a GPU (fp32 only, small --tokens)")
    p.add_argument("--scratch", default=os.path.join(REPO, ".bench-cache", "gpu"),
                   help="checkpoint, prompt and run outputs (large; not under --out)")
    return p.parse_args()


def default_cli():
    candidates = [os.environ.get("AV_CLI", ""), os.path.join(REPO, "build-device", "attnviz"),
                  os.path.join(REPO, "build", "attnviz")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), candidates[-1])


def default_checkpoint():
    ckpt = os.environ.get("checkpoint", "")
    return ckpt if ckpt and os.path.isfile(os.path.join(ckpt, "model.safetensors")) else ""


def log(msg):
    print(f"[gpu_e2e {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class NoDeviceMemory:
    """The --device cpu smoke test: no device memory to sample."""

    source = "none"

    def used_bytes(self):
        return 0


class DeviceMemory:
    """Device-wide used bytes, through NVML when importable, else nvidia-smi."""

    def __init__(self):
        self.nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # noqa: BLE001 - any failure means: use nvidia-smi
            self.nvml = None

    def used_bytes(self):
        if self.nvml:
            return self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True)
        return int(out.stdout.strip().splitlines()[0]) * 2**20 if out.returncode == 0 else -1

    @property
    def source(self):
        return "nvml" if self.nvml else "nvidia-smi"


def run_sampled(cmd, env, log_path, mem):
    """Runs CMD; returns (wall s, peak device bytes above the level before it started, output text)."""
    before = mem.used_bytes()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], mem.used_bytes())
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler.start()
        code = proc.wait()
        wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    with open(log_path, errors="replace") as f:
        text = f.read()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {code}:\n{text[-3000:]}")
    return wall, peak[0] - before, text


def measure_ceilings(torch, dtypes):
    """Large torch.mm rates (fp32 with TF32 off, bf16) and pinned host<->device copy bandwidth, on random data."""
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")

    def time_event(fn, reps):
        fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1e-3)
        return statistics.median(times)

    ceilings = {}
    n = 8192
    for name in dtypes:
        dtype = torch.bfloat16 if name == "bf16" else torch.float32
        a = torch.rand(n, n, device=dev, dtype=dtype) - 0.5
        b = torch.rand(n, n, device=dev, dtype=dtype) - 0.5
        c = torch.empty(n, n, device=dev, dtype=dtype)
        seconds = time_event(lambda: torch.mm(a, b, out=c), 10)
        if not torch.isfinite(c).all():
            raise RuntimeError("torch.mm produced non-finite values")
        ceilings[f"mm_{name}_tflops"] = 2 * n**3 / seconds * 1e-12
        del a, b, c
    nbytes = 1 << 30
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True).random_()
    device = torch.empty(nbytes, dtype=torch.uint8, device=dev)
    ceilings["h2d_gbs"] = nbytes / time_event(lambda: device.copy_(host, non_blocking=True), 5) * 1e-9
    ceilings["d2h_gbs"] = nbytes / time_event(lambda: host.copy_(device, non_blocking=True), 5) * 1e-9
    del host, device
    torch.cuda.empty_cache()
    return ceilings


def measure_cpu_ceilings(torch):
    """The smoke test's stand-in: a CPU torch.mm rate, and no host<->device copies."""
    a, b = torch.rand(1024, 1024) - 0.5, torch.rand(1024, 1024) - 0.5
    torch.mm(a, b)
    t0 = time.perf_counter()
    torch.mm(a, b)
    return {"mm_fp32_tflops": 2 * 1024**3 / (time.perf_counter() - t0) * 1e-12, "h2d_gbs": None, "d2h_gbs": None}


def forward_flops(T):
    """Linear layers 24*T*C^2 per layer, causal attention 2*C*T*(T+1) per layer (see bench/cpu_ab.py)."""
    return N_LAYER * (2 * T * 12 * N_EMBD * N_EMBD + 2 * N_EMBD * T * (T + 1))


def prepare_checkpoint(args):
    if args.model:
        return args.model, "given"
    ckpt = os.path.join(args.scratch, "gpt2-small-random")
    if not os.path.isfile(os.path.join(ckpt, "generator.json")):
        tok_dir = os.environ.get("AV_GPT2_TOKENIZER",
                                 os.path.normpath(os.path.join(REPO, "..", "shared", "data", "gpt2-tokenizer")))
        cmd = [sys.executable, os.path.join(REPO, "weights", "gen_gpt2_small.py"), "--out", ckpt]
        if os.path.isfile(os.path.join(tok_dir, "vocab.json")):
            cmd += ["--tokenizer", tok_dir]
        else:
            cmd += ["--synthetic-tokenizer"]
        log("generating the checkpoint: " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(ckpt, "generator.json")) as f:
        return ckpt, json.load(f).get("tokenizer", "gpt2")


def rel_error(ours_path, ref_path):
    """||ours - ref|| / ||ref|| in float64; inf for a shape mismatch, NaN when ours holds a non-finite value."""
    import numpy as np

    ours, ref = np.load(ours_path).astype(np.float64), np.load(ref_path).astype(np.float64)
    if ours.shape != ref.shape:
        return float("inf")
    if not np.isfinite(ours).all():
        return float("nan")
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


class Runner:
    def __init__(self, args, model, prompt, mem):
        self.args, self.model, self.prompt, self.mem = args, model, prompt, mem
        self.log_dir = os.path.join(args.scratch, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.n = 0

    def _log_path(self, tag):
        self.n += 1
        return os.path.join(self.log_dir, f"{self.n:03d}-{tag}.log")

    def ours(self, dtype):
        out_dir = os.path.join(self.args.scratch, f"out-{dtype}")
        shutil.rmtree(out_dir, ignore_errors=True)
        cmd = [self.args.attnviz, "run", "--model", self.model, "--prompt-file", self.prompt, "--out", out_dir,
               "--layers", "all", "--heads", "all", "--device", self.args.device, "--png", "none",
               "--viewer", "off"]
        if self.args.device == "cuda":
            cmd += ["--dtype", dtype]
        wall, peak, _ = run_sampled(cmd, dict(os.environ), self._log_path(f"ours-{dtype}"), self.mem)
        with open(os.path.join(out_dir, "meta.json")) as f:
            timing = json.load(f).get("timing_ms", {})
        npy = sum(os.path.getsize(os.path.join(out_dir, "attention", f))
                  for f in os.listdir(os.path.join(out_dir, "attention")) if f.endswith(".npy"))
        if npy < N_LAYER * N_HEAD * self.args.tokens**2 * 2:
            raise RuntimeError(f"attnviz {dtype} wrote only {npy} bytes of .npy")
        return {"wall_s": wall, "device_peak_bytes": peak, "meta_timing_ms": timing, "npy_bytes": npy,
                "out_dir": out_dir}

    def hf(self, dtype, save=True):
        save_dir = os.path.join(self.args.scratch, f"hf-{dtype}")
        shutil.rmtree(save_dir, ignore_errors=True)
        cmd = [sys.executable, os.path.join(HERE, "hf_baseline.py"), "--model", self.model, "--prompt-file",
               self.prompt, "--device", self.args.device, "--dtype", dtype, "--expect-tokens", str(self.args.tokens),
               "--repeat", str(self.args.hf_repeat)]
        if save:
            cmd += ["--save-npy", save_dir]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
        wall, peak, text = run_sampled(cmd, env, self._log_path(f"hf-{dtype}"), self.mem)
        phases = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
        return {"wall_s": wall, "device_peak_bytes": peak, "phases": phases, "save_dir": save_dir}


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> int:
    args = parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    import torch

    dtypes = args.dtypes.split(",")
    if args.device == "cpu":
        card, mem, dtypes = "cpu (smoke test)", NoDeviceMemory(), ["fp32"]
    elif torch.cuda.is_available():
        card, mem = torch.cuda.get_device_name(), DeviceMemory()
    else:
        print("gpu_e2e: no CUDA device visible to torch", file=sys.stderr)
        return 1
    commit = subprocess.run(["git", "--no-optional-locks", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"

    log(f"{card}: measuring ceilings")
    ceilings = measure_ceilings(torch, dtypes) if args.device == "cuda" else measure_cpu_ceilings(torch)
    model, tokenizer_kind = prepare_checkpoint(args)
    prompt = os.path.join(args.scratch, f"prompt-T{args.tokens}.txt")
    with open(prompt, "w", encoding="utf-8") as f:
        f.write("".join(PROMPT_WORDS[i % len(PROMPT_WORDS)] for i in range(args.tokens)))
    ids = json.loads(subprocess.run([args.attnviz, "tokenize", "--model", model, "--prompt-file", prompt],
                                    capture_output=True, text=True, check=True).stdout)
    if len(ids) != args.tokens:
        raise RuntimeError(f"attnviz tokenize: {len(ids)} tokens, expected {args.tokens}")

    runner = Runner(args, model, prompt, mem)
    # Warm-up runs double as the check, first and last layer: ours in each dtype against HF fp32 (the reference in
    # the higher precision; bf16 operands land between 1e-3 and 1e-2), and HF bf16 against HF fp32 for scale.
    check, check_ok, reference = {}, True, None
    for dtype in sorted(dtypes, key=lambda d: d != "fp32"):
        log(f"warm-up and check: ours {dtype}, HF {dtype}")
        ours0, hf0 = runner.ours(dtype), runner.hf(dtype)
        reference = reference or hf0["save_dir"]
        for layer in (0, N_LAYER - 1):
            ref = os.path.join(reference, f"layer{layer:02d}.npy")
            err = rel_error(os.path.join(ours0["out_dir"], "attention", f"layer_{layer:02d}.npy"), ref)
            check[f"ours_{dtype}_layer{layer:02d}"] = err
            check_ok = check_ok and err <= (1e-3 if dtype == "fp32" else 2e-2)  # NaN fails too
            if hf0["save_dir"] != reference:
                check[f"hf_{dtype}_layer{layer:02d}"] = rel_error(
                    os.path.join(hf0["save_dir"], f"layer{layer:02d}.npy"), ref)
    log(f"check ||x - HF fp32|| / ||HF fp32||: {check} -> {'ok' if check_ok else 'FAILED'}")

    arms = {(side, dtype): [] for side in ("ours", "hf") for dtype in dtypes}
    order = list(arms)
    for r in range(args.runs):
        for side, dtype in (order if r % 2 == 0 else order[::-1]):
            arms[(side, dtype)].append(runner.ours(dtype) if side == "ours" else runner.hf(dtype))
        log(f"round {r + 1}/{args.runs}: " + ", ".join(f"{s} {d} {v[-1]['wall_s']:.2f}s" for (s, d), v in
                                                     arms.items()))

    T = args.tokens
    common = {"card": card, "commit": commit, "date": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"), "tokenizer": tokenizer_kind, "memory_source": mem.source}
    shape = f"gpt2-small L{N_LAYER} NH{N_HEAD} C{N_EMBD} T{T}, all {N_LAYER * N_HEAD} maps"
    records = [dict(common, name="gpu_ceilings", shape="torch.mm 8192^3; pinned copies 1 GiB", dtype="mixed",
                    unit="TFLOP/s, GB/s", median=None, ceilings=ceilings),
               dict(common, name="gpu_e2e_check", shape=shape, dtype=",".join(dtypes), unit="rel. error", median=None,
                    check=check, ok=check_ok)]
    rows = []
    for dtype in dtypes:
        ours, hf = arms[("ours", dtype)], arms[("hf", dtype)]
        ow, hw = summary([r["wall_s"] for r in ours]), summary([r["wall_s"] for r in hf])
        hf_fwd = summary([r["phases"]["forward_s"] for r in hf])
        hf_inproc = summary([r["phases"]["in_process_s"] for r in hf])
        ours_fw = summary([r["meta_timing_ms"].get("forward_and_write", float("nan")) * 1e-3 for r in ours])
        npy = ours[0]["npy_bytes"]
        weights = os.path.getsize(os.path.join(model, "model.safetensors")) // (2 if dtype == "bf16" else 1)
        flop_s = forward_flops(T) / (ceilings[f"mm_{dtype}_tflops"] * 1e12)
        copy_s = weights / (ceilings["h2d_gbs"] * 1e9) + npy / (ceilings["d2h_gbs"] * 1e9) \
            if ceilings["h2d_gbs"] else 0.0
        floor = max(flop_s, copy_s)
        records.append(dict(common, name=f"gpu_e2e_T{T}", shape=shape, dtype=dtype, unit="s", **ow,
                            baseline="hf-eager-output_attentions process incl. np.save of every layer",
                            baseline_median=hw["median"], baseline_min=hw["min"], baseline_max=hw["max"],
                            ratio=hw["median"] / ow["median"],
                            baseline_in_process_median=hf_inproc["median"],
                            ratio_in_process=hf_inproc["median"] / ow["median"],
                            baseline_warm_forward=hf_fwd, ours_forward_and_write=ours_fw,
                            floor=floor, pct_of_floor=100 * floor / ow["median"],
                            floor_detail={"flops": forward_flops(T), "flop_s": flop_s, "copy_s": copy_s,
                                          "weights_bytes": weights, "npy_bytes": npy},
                            baseline_phases={k: statistics.median(r["phases"][k] for r in hf) for k in
                                             ("import_s", "load_s", "tokenize_s", "forward_s", "save_s")}))
        om = summary([r["device_peak_bytes"] / 2**20 for r in ours])
        hm = summary([r["device_peak_bytes"] / 2**20 for r in hf])
        halloc = summary([r["phases"].get("cuda_max_memory_allocated", 0) / 2**20 for r in hf])
        records.append(dict(common, name=f"gpu_peak_memory_T{T}", shape=shape, dtype=dtype, unit="MiB", **om,
                            baseline="hf process, device used-memory rise (incl. CUDA context)",
                            baseline_median=hm["median"], ratio=hm["median"] / om["median"] if om["median"] else None,
                            baseline_max_memory_allocated=halloc["median"]))
        rows.append((dtype, f"{ow['median']:.3f} ({ow['min']:.3f}-{ow['max']:.3f})",
                     f"{hw['median']:.3f} ({hw['min']:.3f}-{hw['max']:.3f})", f"{hw['median'] / ow['median']:.1f}x",
                     f"{hf_inproc['median']:.3f}", f"{ours_fw['median']:.3f}", f"{hf_fwd['median'] * 1e3:.1f}",
                     f"{om['median']:.0f} / {hm['median']:.0f} ({halloc['median']:.0f})", f"{floor * 1e3:.1f}",
                     f"{100 * floor / ow['median']:.1f}%"))

    for rec in records:
        print(json.dumps(rec))
    head = ("dtype", "attnviz s (min-max)", "HF process s (min-max)", "speedup", "HF in-proc s",
            "ours fwd+write s", "HF warm fwd ms", "dev MiB ours / HF (HF alloc)", "floor ms", "% floor")
    table = [head] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["", f"{card}, commit {commit}, T={T}, {args.runs} runs per arm, tokenizer {tokenizer_kind}; "
              f"check {'ok' if check_ok else 'FAILED'}: " + ", ".join(f"{k} {v:.2e}" for k, v in check.items()),
              "ceilings: " + ", ".join(f"{k} {v:.1f}" for k, v in ceilings.items() if v is not None)]
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "gpu_e2e.jsonl"), "a") as f:
            f.write("".join(json.dumps(rec) + "\n" for rec in records))
        with open(os.path.join(args.out, "gpu_e2e_table.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    return 0 if check_ok else 1


if __name__ == "__main__":
    sys.exit(main())
