#!/usr/bin/env python3
"""The baseline attnviz is measured against: Hugging Face transformers, eager attention, output_attentions=True.

One process is one measured run, done as a user would: import torch and transformers, load the checkpoint
(AutoModel, attn_implementation="eager"), tokenize the prompt file, run one forward pass that returns every layer's
attention probabilities (L tensors of (1, NH, T, T)), and, with --save-npy, write them as .npy files. Prints one JSON
object with the phase timings (seconds, time.perf_counter) and the process's own peak RSS:
  import_s, load_s, tokenize_s, forward_s, save_s, total_s (from the first line of this file to the end),
  in_process_s (load + tokenize + first forward + save: the user's wait after the imports)
With --repeat N (the GPU benchmark) the forward pass runs N more times after the first and forward_s is their median.

Usage: hf_baseline.py --model DIR --prompt-file FILE [--threads N] [--expect-tokens T] [--device cpu|cuda]
                      [--dtype fp32|bf16] [--save-npy DIR] [--repeat N]
"""
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="HF eager output_attentions baseline, one measured run")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-file", required=True)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    p.add_argument("--expect-tokens", type=int, default=0, help="fail unless the prompt is exactly this many tokens")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--save-npy", default="", help="also write each layer's (NH, T, T) probabilities here")
    p.add_argument("--repeat", type=int, default=0, help="extra timed forward passes (warm); forward_s = median")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import torch
    from transformers import AutoModel, AutoTokenizer

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t_imported = time.perf_counter()

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = AutoModel.from_pretrained(args.model, attn_implementation="eager", dtype=dtype).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    t_loaded = time.perf_counter()

    with open(args.prompt_file, encoding="utf-8") as f:
        text = f.read()
    ids = tokenizer(text, return_tensors="pt")["input_ids"].to(args.device)
    t_tokenized = time.perf_counter()
    n_tokens = int(ids.shape[1])
    if args.expect_tokens and n_tokens != args.expect_tokens:
        print(f"hf_baseline: prompt is {n_tokens} tokens, expected {args.expect_tokens}", file=sys.stderr)
        return 1

    def forward():
        with torch.inference_mode():
            out = model(input_ids=ids, output_attentions=True)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return out.attentions

    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    attentions = forward()
    forward_times = [time.perf_counter() - t0]
    for _ in range(args.repeat):
        del attentions
        t0 = time.perf_counter()
        attentions = forward()
        forward_times.append(time.perf_counter() - t0)

    n_layers = len(attentions)
    n_maps = sum(int(a.shape[1]) for a in attentions)
    if n_maps == 0 or any(tuple(a.shape[-2:]) != (n_tokens, n_tokens) for a in attentions):
        print("hf_baseline: the model returned no (T, T) attention maps", file=sys.stderr)
        return 1

    save_s = 0.0
    if args.save_npy:
        import numpy as np

        os.makedirs(args.save_npy, exist_ok=True)
        t0 = time.perf_counter()
        for layer, a in enumerate(attentions):
            np.save(os.path.join(args.save_npy, f"layer{layer:02d}.npy"), a[0].float().cpu().numpy())
        save_s = time.perf_counter() - t0

    result = {
        "impl": "hf-eager-output_attentions",
        "torch": torch.__version__,
        "device": args.device,
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "tokens": n_tokens,
        "layers": n_layers,
        "maps": n_maps,
        "import_s": t_imported - T_START,
        "load_s": t_loaded - t_imported,
        "tokenize_s": t_tokenized - t_loaded,
        "forward_s": statistics.median(forward_times[1:]) if args.repeat else forward_times[0],
        "first_forward_s": forward_times[0],
        "save_s": save_s,
        "total_s": time.perf_counter() - T_START,
        # What a user waits for after the imports: load, tokenize, the first forward pass, the save.
        "in_process_s": t_tokenized - t_imported + forward_times[0] + save_s,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.device == "cuda":
        result["cuda_max_memory_allocated"] = torch.cuda.max_memory_allocated()
        result["cuda_device"] = torch.cuda.get_device_name()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
