#!/usr/bin/env python3
"""CPU end-to-end benchmark driver: `attnviz run` against Hugging Face eager output_attentions, alternating A/B.

Called by bench/cpu_bench.sh, which prepares everything this needs (binaries, checkpoint, the baseline's Python).
Standard library only. For each prompt length T it
  1. writes a prompt of exactly T tokens (common words, each one token with its leading space in GPT-2's vocabulary,
     after the BOS a Llama 3 tokenizer puts first) and checks the count with `attnviz tokenize` (the baseline checks
     it again with the HF tokenizer),
  2. runs each side once untimed (page cache, lazy loading), then alternates ours / HF for --runs rounds, one process
     per run: wall time of the whole process and its peak RSS (wait4's ru_maxrss of that child); each round also
     times a third arm, ours with run-time settings only (--tuned-env),
  3. runs once more, for information: ours writing PNGs too (--png all), HF saving its maps as .npy.
The floors: FLOPs of the forward pass over the best float32 GEMM rate measured on this machine in the same run, and
bytes that must move (weights read once, dumps written once) over the measured memcpy bandwidth; the larger of the two.
Writes one JSON line per measurement to --results (appends) and prints a table last.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

# Words that GPT-2's BPE keeps as one token each when preceded by a space; a prompt of T of them is T tokens (T + 1
# with a BOS).
PROMPT_WORDS = (" the", " of", " and", " to", " in", " a", " is", " that", " for", " it", " was", " on", " with",
                " as", " be", " at", " by", " this", " from", " or", " an", " are", " not", " but", " have")

GENERIC_CORES = ("Prescott", "Core2", "Katmai", "Coppermine", "Northwood", "Banias", "Atom", "Nehalem", "Dunnington",
                 "Penryn")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--attnviz", required=True, help="the attnviz CLI binary")
    p.add_argument("--model", required=True,
                   help="checkpoint directory: GPT-2 (weights/gen_gpt2_small.py) or Llama (weights/gen_llama_small.py)")
    p.add_argument("--python", required=True, help="interpreter with torch + transformers for the baseline")
    p.add_argument("--sgemm-bin", required=True, help="bench/sgemm_rate.c, built")
    p.add_argument("--workdir", required=True, help="scratch space for prompts and outputs (same disk as results)")
    p.add_argument("--results", required=True, help="JSON-lines file to append to")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tokens", default="128,512,1024")
    p.add_argument("--tuned-env", default="auto",
                   help="environment of a third arm, attnviz with run-time settings: 'auto' (OMP_WAIT_POLICY=PASSIVE, "
                        "plus OPENBLAS_CORETYPE when OpenBLAS picks a generic core), 'none', or 'K=V K=V'")
    return p.parse_args()


def log(msg):
    print(f"[cpu_ab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def git_commit(repo):
    def git(*a):
        return subprocess.run(["git", "--no-optional-locks", "-C", repo, *a], capture_output=True, text=True)

    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def thread_env(threads, extra=None):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra or {})
    return env


def run_measured(cmd, env, log_path):
    """Runs CMD as one child; returns (wall seconds, peak RSS in KiB, stdout+stderr text). Raises on failure."""
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path, errors="replace") as f:
        text = f.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{text[-3000:]}")
    return wall, usage.ru_maxrss, text


def measure_ceilings(args, flags):
    """Float32 GEMM rates (OpenBLAS as detected, OpenBLAS forced to the CPU's real core, PyTorch) and memcpy GB/s."""
    env = thread_env(args.threads)
    env.pop("OPENBLAS_CORETYPE", None)
    detected = json.loads(subprocess.run([args.sgemm_bin, "10"], env=env, capture_output=True, text=True,
                                         check=True).stdout)
    ceilings = {"openblas_core": detected["core"], "sgemm_gflops_detected": detected["sgemm_gflops"],
                "memcpy_gbs": detected["memcpy_gbs"]}
    forced_core = pick_forced_core(detected["core"], flags)
    ceilings["forced_core"] = forced_core
    if forced_core:
        forced = json.loads(subprocess.run([args.sgemm_bin, "10"],
                                           env=thread_env(args.threads, {"OPENBLAS_CORETYPE": forced_core}),
                                           capture_output=True, text=True, check=True).stdout)
        ceilings["sgemm_gflops_forced"] = forced["sgemm_gflops"]
        ceilings["memcpy_gbs"] = max(ceilings["memcpy_gbs"], forced["memcpy_gbs"])
    torch_code = (
        "import time, statistics, torch\n"
        f"torch.set_num_threads({args.threads})\n"
        "a = torch.rand(2048, 2048) - 0.5; b = torch.rand(2048, 2048) - 0.5\n"
        "torch.mm(a, b); ts = []\n"
        "for _ in range(10):\n"
        "    t0 = time.perf_counter(); c = torch.mm(a, b); ts.append(time.perf_counter() - t0)\n"
        "assert torch.isfinite(c).all()\n"
        "print(2 * 2048**3 / min(ts) * 1e-9)\n")
    ceilings["torch_mm_gflops"] = float(subprocess.run([args.python, "-c", torch_code], env=env, capture_output=True,
                                                       text=True, check=True).stdout.strip())
    ceilings["sgemm_gflops"] = max(ceilings.get(k, 0.0) for k in
                                   ("sgemm_gflops_detected", "sgemm_gflops_forced", "torch_mm_gflops"))
    return ceilings


def pick_forced_core(detected, flags):
    """The OpenBLAS core this CPU should get when OpenBLAS fell back to a generic one, else None."""
    if detected not in GENERIC_CORES:
        return None
    if "avx512f" in flags:
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return None


def model_shape(model_dir):
    """The sizes the floors and checks need, from the checkpoint's config.json (GPT-2 or Llama-family keys)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] == "gpt2":
        C = cfg["n_embd"]
        return {"name": "gpt2", "L": cfg["n_layer"], "NH": cfg["n_head"], "NKV": cfg["n_head"], "C": C,
                "I": cfg.get("n_inner") or 4 * C, "gated": False}
    return {"name": cfg["model_type"], "L": cfg["num_hidden_layers"], "NH": cfg["num_attention_heads"],
            "NKV": cfg.get("num_key_value_heads") or cfg["num_attention_heads"], "C": cfg["hidden_size"],
            "I": cfg["intermediate_size"], "gated": True}


def forward_flops(T, shape):
    """FLOPs of the forward pass at T tokens, no LM head (attnviz stops at the last block's output).

    Linear layers per layer: 2 * T * (C * (C + 2 KVC) for q, k, v + C^2 for the projection + the MLP, 2 C I, or
    3 C I for a gated one); GPT-2 small: 2 * T * 12 C^2. Attention, causal: per head Q.K^T over the T(T+1)/2 kept
    entries (2*HS each) and P.V over the same, so 2 * C * T * (T+1) per layer. The baseline computes the full T x T
    square; the floor counts only the work that is needed."""
    C, I = shape["C"], shape["I"]
    kvc = C // shape["NH"] * shape["NKV"]
    linear = 2 * T * (C * (C + 2 * kvc) + C * C + (3 if shape["gated"] else 2) * C * I)
    attention = 2 * C * T * (T + 1)
    return shape["L"] * (linear + attention)


def write_prompt(path, n_words):
    text = "".join(PROMPT_WORDS[i % len(PROMPT_WORDS)] for i in range(n_words))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def token_count(args, prompt_path):
    out = subprocess.run([args.attnviz, "tokenize", "--model", args.model, "--prompt-file", prompt_path],
                         capture_output=True, text=True, env=thread_env(args.threads))
    if out.returncode != 0:
        raise RuntimeError(f"attnviz tokenize failed: {out.stderr.strip()}")
    return len(json.loads(out.stdout))


def write_prompt_of(args, path, T):
    """A prompt of exactly T tokens: T words, less the tokens the tokenizer adds (Llama 3's BOS)."""
    write_prompt(path, 1)
    added = token_count(args, path) - 1
    write_prompt(path, T - added)
    n = token_count(args, path)
    if n != T:
        raise RuntimeError(f"attnviz tokenize gives {n} tokens for the {T}-token prompt")


def dump_bytes(out_dir):
    total, n_npy = 0, 0
    for root, _, files in os.walk(out_dir):
        for name in files:
            if name.endswith(".npy"):
                total += os.path.getsize(os.path.join(root, name))
                n_npy += 1
    return total, n_npy


class Arms:
    """The commands of one prompt length, and where their outputs go."""

    def __init__(self, args, T, prompt_path):
        self.args, self.T, self.prompt = args, T, prompt_path
        self.out_dir = os.path.join(args.workdir, f"out-T{T}")
        self.log_dir = os.path.join(args.workdir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)

    def ours(self, png="none", extra_env=None, tag="ours"):
        shutil.rmtree(self.out_dir, ignore_errors=True)
        cmd = [self.args.attnviz, "run", "--model", self.args.model, "--prompt-file", self.prompt, "--out",
               self.out_dir, "--layers", "all", "--heads", "all", "--device", "cpu", "--png", png,
               "--viewer", "off", "--threads", str(self.args.threads)]
        wall, rss, _ = run_measured(cmd, thread_env(self.args.threads, extra_env),
                                    os.path.join(self.log_dir, f"{tag}-T{self.T}.log"))
        written, n_npy = dump_bytes(self.out_dir)
        # Every map must have been written: L x NH float32 (T, T) maps at the least (fp16 would be half).
        if written < self.args.shape["L"] * self.args.shape["NH"] * self.T * self.T * 2:
            raise RuntimeError(f"attnviz run wrote only {written} bytes of .npy ({n_npy} files) at T={self.T}")
        with open(os.path.join(self.out_dir, "meta.json")) as f:
            timing_ms = json.load(f).get("timing_ms", {})
        return {"wall_s": wall, "rss_kib": rss, "npy_bytes": written, "npy_files": n_npy, "timing_ms": timing_ms}

    def hf(self, save_npy=False, tag="hf"):
        cmd = [self.args.python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_baseline.py"),
               "--model", self.args.model, "--prompt-file", self.prompt, "--threads", str(self.args.threads),
               "--expect-tokens", str(self.T)]
        save_dir = os.path.join(self.args.workdir, f"hf-npy-T{self.T}")
        if save_npy:
            shutil.rmtree(save_dir, ignore_errors=True)
            cmd += ["--save-npy", save_dir]
        wall, rss, text = run_measured(cmd, thread_env(self.args.threads),
                                       os.path.join(self.log_dir, f"{tag}-T{self.T}.log"))
        phases = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
        if save_npy:
            shutil.rmtree(save_dir, ignore_errors=True)
        return {"wall_s": wall, "rss_kib": rss, "phases": phases}


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def bench_one_length(args, T, ceilings):
    prompt_path = os.path.join(args.workdir, f"prompt-T{T}.txt")
    write_prompt_of(args, prompt_path, T)
    arms = Arms(args, T, prompt_path)
    tuned = tuned_env(args.tuned_env, ceilings)

    log(f"T={T}: warm-up")
    arms.ours()
    arms.hf()
    ours, hf, ours_tuned, loads = [], [], [], []
    for r in range(args.runs):
        loads.append(os.getloadavg()[0])
        # Alternate which side goes first, so a drift in machine load does not favour one side.
        order = ("ours", "hf") if r % 2 == 0 else ("hf", "ours")
        for side in order:
            if side == "ours":
                ours.append(arms.ours())
            else:
                hf.append(arms.hf())
        if tuned:
            ours_tuned.append(arms.ours(extra_env=tuned, tag="ours-tuned"))
        log(f"T={T} round {r + 1}/{args.runs}: ours {ours[-1]['wall_s']:.2f}s, hf {hf[-1]['wall_s']:.2f}s"
            + (f", ours tuned {ours_tuned[-1]['wall_s']:.2f}s" if tuned else ""))
    log(f"T={T}: information runs (PNG, HF .npy save)")
    ours_png = arms.ours(png="all", tag="ours-png")
    hf_save = arms.hf(save_npy=True, tag="hf-save")
    return {"T": T, "ours": ours, "hf": hf, "ours_tuned": ours_tuned, "tuned_env": tuned, "ours_png": ours_png,
            "hf_save": hf_save, "load1": loads}


def tuned_env(choice, ceilings):
    """Environment of the third arm: run-time settings that may speed attnviz up without a rebuild."""
    if choice == "none":
        return {}
    if choice != "auto":
        return dict(item.split("=", 1) for item in choice.split())
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    if ceilings.get("forced_core"):
        env["OPENBLAS_CORETYPE"] = ceilings["forced_core"]
    return env


def floors(T, shape, ceilings, model_bytes, npy_bytes):
    flops = forward_flops(T, shape)
    flop_s = flops / (ceilings["sgemm_gflops"] * 1e9)
    byte_s = (model_bytes + npy_bytes) / (ceilings["memcpy_gbs"] * 1e9)
    return {"flops": flops, "flop_floor_s": flop_s, "bytes": model_bytes + npy_bytes,
            "byte_floor_s": byte_s, "floor_s": max(flop_s, byte_s)}


def records_for(res, m, ceilings, common, model_bytes):
    T = res["T"]
    kv = f" NKV{m['NKV']}" if m["NKV"] != m["NH"] else ""
    shape = f"{m['name']} L{m['L']} NH{m['NH']}{kv} C{m['C']} T{T}, all {m['L'] * m['NH']} maps"
    ours_wall = summary([r["wall_s"] for r in res["ours"]])
    hf_wall = summary([r["wall_s"] for r in res["hf"]])
    hf_inproc = summary([r["phases"]["in_process_s"] for r in res["hf"]])
    hf_phase_medians = {k: statistics.median(r["phases"][k] for r in res["hf"])
                        for k in ("import_s", "load_s", "tokenize_s", "forward_s", "total_s")}
    npy_bytes = res["ours"][0]["npy_bytes"]
    fl = floors(T, m, ceilings, model_bytes, npy_bytes)
    recs = [dict(common, name=f"cpu_e2e_T{T}", shape=shape, dtype="fp32", unit="s", **ours_wall,
                 baseline="hf-eager-output_attentions process (python start, import, load, tokenize, forward)",
                 baseline_median=hf_wall["median"], baseline_min=hf_wall["min"], baseline_max=hf_wall["max"],
                 ratio=hf_wall["median"] / ours_wall["median"],
                 baseline_in_process_median=hf_inproc["median"],
                 ratio_in_process=hf_inproc["median"] / ours_wall["median"], baseline_phases=hf_phase_medians,
                 floor=fl["floor_s"], pct_of_floor=100 * fl["floor_s"] / ours_wall["median"], floor_detail=fl,
                 ours_cmd="attnviz run --device cpu --layers all --heads all --png none --viewer off --threads N",
                 npy_bytes=npy_bytes,
                 ours_timing_ms={k: statistics.median(r["timing_ms"].get(k, float("nan")) for r in res["ours"])
                                 for k in res["ours"][0]["timing_ms"]},
                 load1_median=statistics.median(res["load1"]))]
    ours_rss = summary([r["rss_kib"] / 1024 for r in res["ours"]])
    hf_rss = summary([r["rss_kib"] / 1024 for r in res["hf"]])
    # Least memory a streaming run needs: the float32 weights and one layer's maps.
    rss_floor = (model_bytes + m["NH"] * T * T * 4) / 2**20
    recs.append(dict(common, name=f"cpu_peak_rss_T{T}", shape=shape, dtype="fp32", unit="MiB", **ours_rss,
                     baseline="hf-eager-output_attentions process peak RSS", baseline_median=hf_rss["median"],
                     baseline_min=hf_rss["min"], baseline_max=hf_rss["max"],
                     ratio=hf_rss["median"] / ours_rss["median"], floor=rss_floor,
                     pct_of_floor=100 * rss_floor / ours_rss["median"]))
    if res["ours_tuned"]:
        tuned = summary([r["wall_s"] for r in res["ours_tuned"]])
        settings = " ".join(f"{k}={v}" for k, v in res["tuned_env"].items())
        recs.append(dict(common, name=f"cpu_e2e_tuned_env_T{T}", shape=shape, dtype="fp32", unit="s", **tuned,
                         baseline="hf-eager-output_attentions process", baseline_median=hf_wall["median"],
                         ratio=hf_wall["median"] / tuned["median"], floor=fl["floor_s"],
                         pct_of_floor=100 * fl["floor_s"] / tuned["median"], tuned_env=res["tuned_env"],
                         note=f"ours run with {settings} (same rounds, third arm)"))
    png, save = res["ours_png"], res["hf_save"]
    recs.append(dict(common, name=f"cpu_e2e_png_all_T{T}", shape=shape, dtype="fp32", unit="s",
                     median=png["wall_s"], min=png["wall_s"], max=png["wall_s"], n=1,
                     baseline="hf-eager-output_attentions process that also np.save()s every layer",
                     baseline_median=save["wall_s"], ratio=save["wall_s"] / png["wall_s"], floor=fl["floor_s"],
                     pct_of_floor=100 * fl["floor_s"] / png["wall_s"], peak_rss_mib=png["rss_kib"] / 1024,
                     baseline_peak_rss_mib=save["rss_kib"] / 1024, baseline_save_s=save["phases"]["save_s"],
                     note="one run each, for information: ours with --png all (PNGs + .npy), HF saving .npy"))
    return recs


def print_table(records, ceilings):
    rows = [("T", "attnviz s (min-max)", "HF s (min-max)", "speedup", "HF in-proc s", "speedup in-proc",
             "RSS MiB ours/HF", "floor s", "% of floor")]
    by_name = {r["name"]: r for r in records}
    for r in records:
        if not r["name"].startswith("cpu_e2e_T"):
            continue
        T = r["name"][len("cpu_e2e_T"):]
        rss = by_name[f"cpu_peak_rss_T{T}"]
        rows.append((T, f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})",
                     f"{r['baseline_median']:.2f} ({r['baseline_min']:.2f}-{r['baseline_max']:.2f})",
                     f"{r['ratio']:.2f}x", f"{r['baseline_in_process_median']:.2f}", f"{r['ratio_in_process']:.2f}x",
                     f"{rss['median']:.0f} / {rss['baseline_median']:.0f}", f"{r['floor']:.3f}",
                     f"{r['pct_of_floor']:.1f}%"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    extra = []
    for r in records:
        if r["name"].startswith("cpu_e2e_png_all_T"):
            extra.append(f"  T={r['name'].rsplit('T', 1)[1]}: attnviz --png all {r['median']:.2f}s "
                         f"(RSS {r['peak_rss_mib']:.0f} MiB); HF + np.save {r['baseline_median']:.2f}s "
                         f"(RSS {r['baseline_peak_rss_mib']:.0f} MiB)")
        elif r["name"].startswith("cpu_e2e_tuned_env_"):
            extra.append(f"  {r['name']}: {r['median']:.2f}s ({r['min']:.2f}-{r['max']:.2f}), "
                         f"{r['ratio']:.2f}x vs HF; {r['note']}")
    ceil = (f"ceilings ({ceilings['threads']} threads): OpenBLAS sgemm {ceilings['sgemm_gflops_detected']:.1f} "
            f"GFLOP/s as detected ({ceilings['openblas_core']})"
            + (f", {ceilings['sgemm_gflops_forced']:.1f} with {ceilings['forced_core']}"
               if ceilings.get("forced_core") else "")
            + f", torch.mm {ceilings['torch_mm_gflops']:.1f} GFLOP/s; floor uses {ceilings['sgemm_gflops']:.1f} "
              f"GFLOP/s and memcpy {ceilings['memcpy_gbs']:.1f} GB/s (read+write)"
            # The runs keep the caller's environment: a set OPENBLAS_CORETYPE picks attnviz's kernels.
            + (f"; the runs inherit OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}"
               if os.environ.get("OPENBLAS_CORETYPE") else ""))
    return "\n".join(lines + ["", ceil, "other arms:"] + extra)


def main() -> int:
    args = parse_args()
    args.shape = model_shape(args.model)
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    flags = cpu_flags()
    tokens = [int(t) for t in args.tokens.split(",")]
    model_bytes = os.path.getsize(os.path.join(args.model, "model.safetensors"))

    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    log("measuring ceilings (sgemm, memcpy, torch.mm) before the runs")
    ceilings = measure_ceilings(args, flags)
    results = []
    for T in tokens:
        results.append(bench_one_length(args, T, ceilings))
        with open(os.path.join(args.workdir, f"raw-T{T}.json"), "w") as f:
            json.dump(results[-1], f)
    # Ceilings are what the machine can do: on a shared machine one measurement can land in a busy moment, so
    # measure again at the end and keep the higher of each.
    log("measuring ceilings again after the runs")
    after = measure_ceilings(args, flags)
    ceilings = {k: max(v, after[k]) if isinstance(v, float) else v for k, v in ceilings.items()}
    ceilings["threads"] = args.threads
    common = {"card": cpu_model(), "cpus_online": os.cpu_count(), "threads": args.threads, "commit": git_commit(repo),
              "date": date, "openblas_core": ceilings["openblas_core"]}

    records = [dict(common, name="cpu_sgemm_rate", shape="OpenBLAS sgemm, best of qkv/mlp/2048^2", dtype="fp32",
                    unit="GFLOP/s", median=ceilings["sgemm_gflops"], ceilings=ceilings),
               dict(common, name="cpu_memcpy_bw", shape="memcpy 256 MiB", dtype="bytes", unit="GB/s",
                    median=ceilings["memcpy_gbs"])]
    for res in results:
        records += records_for(res, args.shape, ceilings, common, model_bytes)

    with open(args.results, "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    table = print_table(records, ceilings)
    with open(os.path.join(args.workdir, "table.md"), "w") as f:
        f.write(table + "\n")
    print(f"\n{len(records)} measurements appended to {args.results}")
    print(f"CPU {common['card']}, {args.threads} threads, commit {common['commit']}, {common['date']}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
