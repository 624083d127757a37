"""numpy peer for bench/synth.ts: the same speckle and texture draws on the same sizes.

Prints one JSON object: milliseconds per 256 × 256 field for each draw, best of `repeats`.
Run by bench/synth.ts; alone: .venv/bin/python bench/synth_peer.py 256 20
"""

import json
import sys
import time

import numpy as np


def best_ms(draw, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def main() -> None:
    size, repeats = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    shape = (size, size)
    alpha = 1.8  # G0 roughness -α of urban roofs
    timings = {
        "exponential (L = 1 speckle)": best_ms(lambda: rng.exponential(1.0, shape).astype(np.float32), repeats),
        "gamma L = 4 speckle": best_ms(lambda: (rng.gamma(4.0, 1.0, shape) / 4.0).astype(np.float32), repeats),
        "gamma texture nu = 4 (K)": best_ms(lambda: (rng.gamma(4.0, 1.0, shape) / 4.0).astype(np.float32), repeats),
        "inverse-gamma texture alpha = -1.8 (G0)": best_ms(lambda: ((alpha - 1.0) / rng.gamma(alpha, 1.0, shape)).astype(np.float32), repeats),
    }
    print(json.dumps({"numpy": np.__version__, "ms": timings}))


if __name__ == "__main__":
    main()
