#!/usr/bin/env python3
"""The launch order of the causal attention kernels, in a model of how a GPU hands out blocks.

A GPU starts blocks in ascending linear index (x fastest) and gives each freed slot the next block, so the grid's
index order is the schedule. A causal query tile's work is its number of key tiles, which grows along the sequence.
This replays that greedy dispatch for two orders of the same blocks and prints the time each takes (in key tiles of
one block), against the balanced time (all work / slots):
  tiles fastest   the grid (query tiles, heads, batch), tiles heaviest first within each head: attnviz until the
                  seventh session;
  heavy first     one index over (query tile, head, batch) with the heads and batch entries fastest: every head's
                  heaviest tile goes before any lighter one (kernels/attention_tiles.cuh, heavy_first_item).
Shapes: the benchmark's (bench/bench_attention.cu), on 132 SMs (H100 SXM / H200): the forward (128-row query tiles,
64-key tiles, 2 blocks an SM) and the probability pass (64-row tiles, 3 blocks an SM).
Usage: python3 bench/schedule_model.py [--sms N]
"""
import argparse
import heapq


def makespan(works, slots):
    """Greedy dispatch in list order: each block goes to the slot that frees first."""
    free_at = [0.0] * slots
    for w in works:
        heapq.heappush(free_at, heapq.heappop(free_at) + w)
    return max(free_at)


def orders(n_tiles, heads, work):
    """The block works in the two launch orders; work(qt) is query tile qt's key tiles."""
    tiles_fastest = [work(qt) for _ in range(heads) for qt in reversed(range(n_tiles))]
    heavy_first = [work(qt) for qt in reversed(range(n_tiles)) for _ in range(heads)]
    return tiles_fastest, heavy_first


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sms", type=int, default=132)
    args = ap.parse_args()
    kernels = (  # name, query rows a block, blocks an SM, key tiles of query tile qt (64 keys each)
        ("forward", 128, 2, lambda qt: 2 * qt + 2),
        ("probs", 64, 3, lambda qt: qt + 1),
    )
    print(f"{'kernel':8} {'shape':22} {'blocks':>7} {'balanced':>9} {'tiles fastest':>14} {'heavy first':>12}")
    worst = 0.0
    for name, rows, per_sm, work in kernels:
        slots = args.sms * per_sm
        for model, heads in (("gpt2", 12), ("llama3-8b", 32)):
            for n in (2048, 4096, 8192, 32768):
                n_tiles = n // rows
                fastest, heavy = orders(n_tiles, heads, work)
                balanced = sum(heavy) / slots
                a, b = makespan(fastest, slots), makespan(heavy, slots)
                worst = max(worst, b / max(a, 1e-9))
                print(f"{name:8} {model + ' n=' + str(n):22} {len(heavy):7d} {balanced:9.0f} "
                      f"{a:8.0f} ({a / balanced:.2f}x) {b:6.0f} ({b / balanced:.2f}x)")
    # Heaviest first is the classic longest-processing-time-first rule: never worse on these shapes.
    if worst > 1.0:
        raise SystemExit(f"heavy first was slower than tiles fastest on some shape ({worst:.2f}x)")


if __name__ == "__main__":
    main()
