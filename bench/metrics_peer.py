"""The reference side of bench/metrics.ts: scikit-image and scipy on the same inputs.

  .venv/bin/python bench/metrics_peer.py glcm <dir> <reps>
      Times, in this process, the GLCM chain on <dir>/glcm.f32 (1024 x 1024 float32 amplitude).
  .venv/bin/python bench/metrics_peer.py distances <dir> <reps>
      Times the amplitude distances between the two sets <dir>/set-a.f32 and <dir>/set-b.f32
      (100 images of 512 x 512 each).
  Both print JSON with the wall and CPU times (ms) and the values.
  .venv/bin/python bench/metrics_peer.py stats <file.tif>
      What `sardine stats <file.tif> --json` computes, as a whole process (for the end-to-end row).

Conventions are sardine's (issue 4): v = clip(A / (mean + 3 std), 0, 1), q = min(L - 1, floor(v L)),
symmetric normed GLCM; pooled v as float32; 256 bins on [0, 1]; KL with one pseudo-count per bin.
"""

import json
import math
import sys
import time

import numpy as np
import scipy.spatial.distance
import scipy.special
import scipy.stats
from scipy.optimize import brentq
from skimage.feature import graycomatrix, graycoprops

PROPS = ["contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation", "mean", "variance", "std", "entropy"]
LEVELS, DISTANCES, ANGLES = 64, [1], np.deg2rad([0, 45, 90, 135])
SET_IMAGES, SET_SIDE = 100, 512


def normalise(amplitude32):
    a = amplitude32.astype(np.float64)
    return np.clip(a / (a.mean() + 3 * a.std()), 0, 1)


def glcm_chain(amplitude32):
    v = normalise(amplitude32)
    q = np.minimum(LEVELS - 1, np.floor(v * LEVELS)).astype(np.uint8)
    P = graycomatrix(q, DISTANCES, ANGLES, levels=LEVELS, symmetric=True, normed=True)
    return {p: graycoprops(P, p) for p in PROPS}


def distances(set_a, set_b):
    pooled_a = np.concatenate([normalise(image).ravel().astype(np.float32) for image in set_a])
    pooled_b = np.concatenate([normalise(image).ravel().astype(np.float32) for image in set_b])
    ha, _ = np.histogram(pooled_a, bins=256, range=(0.0, 1.0))
    hb, _ = np.histogram(pooled_b, bins=256, range=(0.0, 1.0))
    p, q = ha / ha.sum(), hb / hb.sum()
    bc = np.sum(np.sqrt(p * q))
    return {
        "wasserstein": float(scipy.stats.wasserstein_distance(pooled_a, pooled_b)),
        "ks": float(scipy.stats.ks_2samp(pooled_a, pooled_b).statistic),
        "kl": float(scipy.stats.entropy(ha + 1.0, hb + 1.0)),
        "js": float(scipy.spatial.distance.jensenshannon(p, q) ** 2),
        "hellinger": float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))),
        "bhattacharyya": float(-np.log(bc)) if bc < 1 else 0.0,
    }


def timed(run, reps):
    """Wall and CPU milliseconds of each repetition, each list sorted, and the last result."""
    wall, cpu, result = [], [], None
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall.append(1e3 * (time.perf_counter() - start))
        cpu.append(1e3 * (time.process_time() - start_cpu))
    return {"wall": sorted(wall), "cpu": sorted(cpu)}, result


def glcm(folder, reps):
    image = np.fromfile(f"{folder}/glcm.f32", dtype="<f4").reshape(1024, 1024)
    times, props = timed(lambda: glcm_chain(image), reps)
    print(json.dumps({"ms": times, "props": {p: v.tolist() for p, v in props.items()}}))


def set_distances(folder, reps):
    shape = (SET_IMAGES, SET_SIDE, SET_SIDE)
    set_a = np.fromfile(f"{folder}/set-a.f32", dtype="<f4").reshape(shape)
    set_b = np.fromfile(f"{folder}/set-b.f32", dtype="<f4").reshape(shape)
    times, values = timed(lambda: distances(set_a, set_b), reps)
    print(json.dumps({"ms": times, "values": values}))


def inverse_trigamma(y):
    return brentq(lambda x: scipy.special.polygamma(1, x) - y, 1e-12, 1e15)


def g0(k1, k2, k3):
    lmin = inverse_trigamma(k2)

    def minus_alpha(L):
        return inverse_trigamma(k2 - scipy.special.polygamma(1, L))

    def residual(t):
        L = math.exp(t)
        return scipy.special.polygamma(2, L) - scipy.special.polygamma(2, minus_alpha(L)) - k3

    lo, hi = math.log(lmin), math.log(1e10)
    if not (scipy.special.polygamma(2, lmin) - k3 < 0 and residual(hi) > 0):
        return None
    L = math.exp(brentq(residual, lo + 1e-12 * max(1, abs(lo)), hi))
    a = minus_alpha(L)
    return {"alpha": -a, "gamma": L * math.exp(k1 - scipy.special.digamma(L) + scipy.special.digamma(a)), "looks": L}


def stats(file):
    import tifffile

    amplitude = tifffile.imread(file).astype(np.float32)
    a = amplitude.astype(np.float64)
    intensity = a * a
    log_i = np.log(intensity[intensity > 0])
    k1, k2, k3 = log_i.mean(), log_i.var(), scipy.stats.moment(log_i, 3)
    out = {
        "amplitude": {
            "mean": a.mean(), "std": a.std(), "cv": a.std() / a.mean(),
            "enl": intensity.mean() ** 2 / intensity.var(),
            **{f"q{int(100 * p):02d}": float(np.quantile(amplitude, p)) for p in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)},
            "logCumulants": [k1, k2, k3], "gammaLooks": inverse_trigamma(k2), "g0": g0(k1, k2, k3),
        },
        "glcm": {p: v.tolist() for p, v in glcm_chain(amplitude).items()},
    }
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "glcm":
        glcm(sys.argv[2], int(sys.argv[3]))
    elif mode == "distances":
        set_distances(sys.argv[2], int(sys.argv[3]))
    else:
        stats(sys.argv[2])
