"""Golden values for sardine's paired metrics (framework/metrics/paired-*.ts), computed with numpy and scipy.

Run from the repository root:  .venv/bin/python tools/make_paired_metric_goldens.py

Writes test/fixtures/metrics/paired.json: a few pairs of float32 amplitude images (a generated one and the
true one of its scene) over a shared label map, and what numpy / scipy compute from them:
  per pair      Wasserstein-1 and KS of the per-image normalised amplitude v = clip(A / (mean + 3 std), 0, 1)
                (float32 samples, scipy.stats.wasserstein_distance and ks_2samp's statistic); the layout
                agreement: Pearson's r (np.corrcoef) of ln(max(block mean, 1e-3)) over full w x w blocks,
                w = 4, 8, averaged over w
  over pairs    np.quantile (linear) quartiles, min, max and mean of the per-pair values
  per class     over the pixels of each class pooled across pairs: mean amplitude, CV = std / mean
                (population std), ENL = mean(A^2)^2 / var(A^2), for the generated and the true images
Inputs come from a seeded numpy Generator, so a rerun rewrites the same bytes.
"""

import numpy as np
import scipy.stats
from make_metric_goldens import b64, nums, versions, write

SIZE = 32
CLASSES = [(1, "water"), (3, "crops"), (5, "urban")]
BRIGHTNESS = {1: 0.05, 3: 0.3, 5: 1.2}
SCALES = [4, 8]
FLOOR = 1e-3


def label_map(rng: np.random.Generator) -> np.ndarray:
    """Water and urban rectangles placed anywhere on crops (so scenes differ); a corner of value 0, no declared class."""
    labels = np.full((SIZE, SIZE), 3, dtype=np.int32)
    for value in (1, 5):
        y, x = rng.integers(0, SIZE - 12, size=2)
        h, w = rng.integers(8, 16, size=2)
        labels[y : y + h, x : x + w] = value
    labels[28:, 28:] = 0
    return labels


def render(labels: np.ndarray, rng: np.random.Generator, looks: int) -> np.ndarray:
    """Mean backscatter per class times L-look amplitude speckle (sqrt of unit-mean Gamma intensity)."""
    mean = np.vectorize(lambda v: BRIGHTNESS.get(int(v), 0.6))(labels)
    speckle = np.sqrt(rng.gamma(looks, 1 / looks, size=labels.shape))
    return (mean * speckle).astype(np.float32)


def normalised(a: np.ndarray) -> np.ndarray:
    a64 = a.astype(np.float64)
    return np.clip(a64 / (a64.mean() + 3 * a64.std()), 0, 1).astype(np.float32).ravel()


def block_log_means(a: np.ndarray, w: int) -> np.ndarray:
    n = SIZE // w
    blocks = a[: n * w, : n * w].astype(np.float64).reshape(n, w, n, w).mean(axis=(1, 3))
    return np.log(np.maximum(blocks, FLOOR)).ravel()


def layout(g: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(block_log_means(g, w), block_log_means(t, w))[0, 1] for w in SCALES]))


def spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"n": len(v), "mean": float(v.mean()), "min": float(v.min()), "q25": float(np.quantile(v, 0.25)),
            "median": float(np.quantile(v, 0.5)), "q75": float(np.quantile(v, 0.75)), "max": float(v.max())}


def class_statistics(images: list[np.ndarray], maps: list[np.ndarray], value: int) -> dict:
    a = np.concatenate([img[m == value].astype(np.float64) for img, m in zip(images, maps)])
    i = a * a
    return {"pixels": int(a.size), "mean": float(a.mean()), "cv": float(a.std() / a.mean()), "enl": float(i.mean() ** 2 / i.var())}


def main() -> None:
    rng = np.random.default_rng(1907)
    pairs = []
    for k in range(4):
        labels = label_map(rng)
        truth = render(labels, rng, looks=1)
        # The generated image follows the same map with its own speckle and a slightly different contrast.
        generated = (render(labels, rng, looks=1) * np.float32(0.9 + 0.05 * k)).astype(np.float32)
        pairs.append((labels, generated, truth))
    cases = []
    for labels, g, t in pairs:
        vg, vt = normalised(g), normalised(t)
        cases.append({
            "labels": b64(labels, np.int32),
            "generated": b64(g, np.float32),
            "truth": b64(t, np.float32),
            "wasserstein": float(scipy.stats.wasserstein_distance(vg, vt)),
            "ks": float(scipy.stats.ks_2samp(vg, vt).statistic),
            "layout": layout(g, t),
        })
    shuffled = [layout(pairs[k][1], pairs[(k + 1) % len(pairs)][2]) for k in range(len(pairs))]
    write("paired.json", {
        "versions": versions(),
        "size": SIZE,
        "scales": SCALES,
        "classes": [{"value": v, "name": n} for v, n in CLASSES],
        "pairs": cases,
        "shuffledLayout": nums(shuffled),
        "spread": {name: spread([c[name] for c in cases]) for name in ["wasserstein", "ks", "layout"]},
        "perClass": [
            {
                "value": v,
                "name": n,
                "generated": class_statistics([p[1] for p in pairs], [p[0] for p in pairs], v),
                "truth": class_statistics([p[2] for p in pairs], [p[0] for p in pairs], v),
            }
            for v, n in CLASSES
        ],
    })


if __name__ == "__main__":
    main()
