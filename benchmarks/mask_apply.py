"""Cost of re-applying element-wise masks to MiniLM-sized matrices, by implementation.

The frozen phase of rpp/magnitude/frozen re-zeroes pruned weights after every optimizer step;
this compares ways to do it over the 36 encoder Linear shapes of all-MiniLM-L6-v2 (10.6 M weights,
80% pruned, random pattern), 2 threads, median of 7 passes. No training, no model download.

    python benchmarks/mask_apply.py      # prints a table; nothing is written
"""

from __future__ import annotations

import statistics
import time

import torch

SHAPES = [(384, 384)] * 4 * 6 + [(1536, 384), (384, 1536)] * 6


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    weights = [torch.randn(shape) for shape in SHAPES]
    pruned = [torch.rand(shape) < 0.8 for shape in SHAPES]
    keep_bool = [~p for p in pruned]
    keep_float = [k.float() for k in keep_bool]
    variants = {
        "masked_fill_(pruned_bool, 0) [current]": lambda i: weights[i].masked_fill_(pruned[i], 0.0),
        "mul_(keep_bool)": lambda i: weights[i].mul_(keep_bool[i]),
        "mul_(keep_float) [+4 bytes/weight]": lambda i: weights[i].mul_(keep_float[i]),
    }
    print("| implementation | ms per pass over 36 matrices |\n|---|---|")
    for name, apply in variants.items():
        times = []
        for _ in range(7):
            start = time.perf_counter()
            with torch.no_grad():
                for index in range(len(SHAPES)):
                    apply(index)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {statistics.median(times) * 1000:.1f} |")


if __name__ == "__main__":
    main()
