"""Golden values for the real Sentinel-1 scene (test/fixtures/data/s1-grd-vv-db-20m.tif).

tifffile decodes the scene; numpy computes the unit conversion and the normalisations sardine
declares (A / (mean + 3·std) clipped to [0, 1] with population std, a dB window, percentiles with
numpy's default linear interpolation), with and without a validity mask. Run from the repo root:

    .venv/bin/python tools/make_sar_golden.py
"""

import json
from pathlib import Path

import numpy as np
import tifffile

SCENE = Path("test/fixtures/data/s1-grd-vv-db-20m.tif")
OUT = Path("test/fixtures/data/s1-grd-golden.json")
PIXELS = [(0, 0), (10, 20), (100, 150), (216, 267), (57, 201)]  # (row, column)


def mean_std(a: np.ndarray, valid: np.ndarray, k: float = 3.0) -> dict:
    v = a[valid].astype(np.float64)
    mean, std = v.mean(), v.std()  # population std (ddof=0), as the seed study
    normalised = np.clip(a.astype(np.float64) / (mean + k * std), 0.0, 1.0)
    normalised[~valid] = 0.0
    return {
        "mean": mean, "std": std,
        "normalisedMean": normalised.mean(),
        "clippedFraction": float((normalised[valid] >= 1.0).mean()),
        "pixels": [normalised[r, c] for r, c in PIXELS],
    }


def main() -> None:
    with tifffile.TiffFile(SCENE) as tif:
        page = tif.pages[0]
        db = page.asarray()
        no_data = float(page.tags[42113].value.strip("\x00")) if 42113 in page.tags else None
    assert db.dtype == np.float32
    a = np.power(10.0, db.astype(np.float64) / 20.0)
    everywhere = np.ones(db.shape, dtype=bool)
    bright = db >= -20.0  # a mask that excludes the dark water, to check masked statistics

    p_low, p_high = np.percentile(a, [1.0, 99.0])
    percentile_normalised = np.clip((a - p_low) / (p_high - p_low), 0.0, 1.0)
    window = np.clip((20.0 * np.log10(a) - (-25.0)) / (0.0 - (-25.0)), 0.0, 1.0)

    golden = {
        "file": str(SCENE),
        "height": int(db.shape[0]), "width": int(db.shape[1]), "dtype": str(db.dtype), "noData": no_data,
        "db": {"min": float(db.min()), "max": float(db.max()), "mean": float(db.astype(np.float64).mean()),
               "pixels": [float(db[r, c]) for r, c in PIXELS]},
        "pixelPositions": PIXELS,
        "amplitude": {"min": a.min(), "max": a.max(), "mean": a.mean(), "pixels": [a[r, c] for r, c in PIXELS]},
        "meanStd": mean_std(a, everywhere),
        "meanStdMaskedDbBelowMinus20": {**mean_std(a, bright), "validCount": int(bright.sum())},
        "percentiles": {"p1": p_low, "p99": p_high, "p50": float(np.percentile(a, 50.0)),
                        "p2_5Masked": float(np.percentile(a[bright], 2.5)),
                        "normalisedMean": percentile_normalised.mean()},
        "dbWindowMinus25To0": {"normalisedMean": window.mean(), "pixels": [window[r, c] for r, c in PIXELS]},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(golden, indent=1, default=float) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
