"""Golden values for sardine's SAR metrics, computed with scipy and scikit-image.

Run from the repository root:  .venv/bin/python tools/make_metric_goldens.py

Writes test/fixtures/metrics/*.json (inputs as base64 little-endian arrays, outputs as numbers)
and test/fixtures/metrics/images/ (small image files for the CLI tests). Every random input comes
from a seeded numpy Generator, so a rerun rewrites the same bytes. The real Sentinel-1 scene is
test/fixtures/data/s1-grd-vv-db-20m.tif (its origin and licence: test/fixtures/data/README.md).

Conventions mirrored from the sardine CLI contract (issue 4):
  linear amplitude A (float32) -> v = clip(A / (mean(A) + 3 std(A)), 0, 1) in float64, population std
  -> q = min(L - 1, floor(v L)) -> graycomatrix(q, distances, deg2rad(angles), L, symmetric, normed).
Pooled samples for the amplitude distances are v rounded to float32.
"""

import base64
import json
import math
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg
import scipy.spatial.distance
import scipy.special
import scipy.stats
import skimage
import tifffile
import torch
from PIL import Image
from scipy.optimize import brentq
from skimage.feature import graycomatrix, graycoprops

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "metrics"
SCENE_FILE = "test/fixtures/data/s1-grd-vv-db-20m.tif"
SCENE = ROOT / SCENE_FILE

PROPS = ["contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation", "mean", "variance", "std", "entropy"]
QUANTILES = [("q01", 0.01), ("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95), ("q99", 0.99)]


def b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def num(x):
    """JSON has no Infinity/NaN: write them as strings the tests parse back."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def nums(a):
    return [num(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def write(name, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(payload, separators=(",", ":")) + "\n")


def versions():
    return {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__}


# ---------------------------------------------------------------- special functions


def special_functions():
    xs = [1e-8, 1e-3, 0.1, 0.5, 1.0, 1.4616321449683622, 1.5, 2.0, 3.7, 9.99, 10.0, 12.5, 50.0, 1e3, 1e6,
          -0.5, -1.3, -2.5, -7.25, 0.0, -1.0, -3.0]
    return {
        "versions": versions(),
        "x": xs,
        "digamma": nums(scipy.special.digamma(xs)),
        "trigamma": nums(scipy.special.polygamma(1, xs)),
        "tetragamma": nums(scipy.special.polygamma(2, xs)),
    }


# ---------------------------------------------------------------- GLCM


def glcm_case(name, image, distances, angles, levels, symmetric, normed, mask=None):
    image = np.asarray(image, dtype=np.uint16)
    if mask is None:
        P = graycomatrix(image, distances, angles, levels=levels, symmetric=symmetric, normed=normed)
    else:
        # scikit-image has no mask: give masked pixels an extra level, count, then drop that level.
        marked = np.where(mask, image, levels).astype(np.uint16)
        P = graycomatrix(marked, distances, angles, levels=levels + 1)[:levels, :levels].astype(np.float64)
        if symmetric:
            P = P + np.transpose(P, (1, 0, 2, 3))
        if normed:
            sums = P.sum(axis=(0, 1), keepdims=True)
            sums[sums == 0] = 1
            P = P / sums
    case = {
        "name": name,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "levels": levels,
        "image": b64(image, np.uint16),
        "distances": list(map(float, distances)),
        "angles": list(map(float, angles)),
        "symmetric": symmetric,
        "normed": normed,
        # P in scikit-image's layout [i][j][distance][angle], flattened; kept only when small.
        "P": nums(P) if P.size <= 600 else None,
        "props": {p: [nums(row) for row in graycoprops(P, p)] for p in PROPS},
    }
    if mask is not None:
        case["mask"] = b64(mask.astype(np.uint8), np.uint8)
    return case


def glcm_cases():
    rng = np.random.default_rng(404)
    doc = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 2, 2], [2, 2, 3, 3]])
    four = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    random8 = rng.integers(0, 8, size=(19, 23))
    random16 = rng.integers(0, 16, size=(29, 33))
    many_angles = [0, np.pi / 6, np.pi / 4, np.pi / 2, 2 * np.pi / 3, np.pi, 5 * np.pi / 4, -np.pi / 2]
    mask = rng.random((29, 33)) > 0.3
    return {
        "versions": versions(),
        "cases": [
            glcm_case("scikit-image docstring, counts", doc, [1], four, 4, False, False),
            glcm_case("scikit-image docstring, symmetric normed", doc, [1, 2], four, 4, True, True),
            glcm_case("random 8 levels, fractional distances, many angles", random8, [1, 2, 3.5], many_angles, 8, True, True),
            glcm_case("random 8 levels, not symmetric, not normed", random8, [1, 3], four, 8, False, False),
            glcm_case("random 16 levels, normed only", random16, [1], four, 16, False, True),
            glcm_case("random 16 levels with a mask", random16, [1, 2], four, 16, True, True, mask=mask),
            glcm_case("constant image", np.full((6, 7), 5), [1], four, 8, True, True),
            glcm_case("single grey level", np.zeros((5, 5)), [1, 2], four, 1, True, True),
            glcm_case("one row, no vertical pairs", rng.integers(0, 4, size=(1, 9)), [1], [0, np.pi / 2], 4, True, True),
            glcm_case("300 levels", rng.integers(0, 300, size=(10, 12)), [1, 2], four, 300, True, True),
        ],
    }


# ---------------------------------------------------------------- amplitude statistics


def inverse_trigamma(y):
    return brentq(lambda x: scipy.special.polygamma(1, x) - y, 1e-12, 1e15, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=2000)


def g0_molc(k1, k2, k3):
    """G0 intensity by log-cumulants with L unknown: k2 = psi1(L) + psi1(-a), k3 = psi2(L) - psi2(-a)."""
    if not k2 > 0:
        return (math.nan,) * 3
    lmin = inverse_trigamma(k2)

    def minus_alpha(L):
        return inverse_trigamma(k2 - scipy.special.polygamma(1, L))

    def residual(t):
        L = math.exp(t)
        return scipy.special.polygamma(2, L) - scipy.special.polygamma(2, minus_alpha(L)) - k3

    lo, hi = math.log(lmin), math.log(1e10)
    if not (scipy.special.polygamma(2, lmin) - k3 < 0 and residual(hi) > 0):
        return (math.nan,) * 3
    # brentq needs a finite residual at lo; step just inside.
    t = brentq(residual, lo + 1e-12 * max(1, abs(lo)), hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    L = math.exp(t)
    a = minus_alpha(L)
    gamma = L * math.exp(k1 - scipy.special.digamma(L) + scipy.special.digamma(a))
    return (-a, gamma, L)


def amplitude_statistics_golden(amplitude32):
    a = amplitude32.astype(np.float64)
    intensity = a * a
    positive = a[a > 0]
    log_i = np.log(positive * positive)
    k1 = log_i.mean() if log_i.size else math.nan
    k2 = np.var(log_i) if log_i.size else math.nan
    k3 = scipy.stats.moment(log_i, 3) if log_i.size else math.nan
    mean = a.mean()
    std = a.std()
    if np.ptp(a) == 0:
        # A constant: the moments are exactly zero (numpy's mean can miss the value by an ulp).
        k1, k2, k3, mean, std = (np.log(a[0] * a[0]) if a[0] > 0 else math.nan), 0.0, 0.0, a[0], 0.0
    alpha, gamma, looks = g0_molc(k1, k2, k3)
    out = {
        "count": int(a.size),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean != 0 else math.nan,
        "enl": intensity.mean() ** 2 / intensity.var() if std > 0 else (math.inf if mean > 0 else math.nan),
        "logCumulant1": k1,
        "logCumulant2": k2,
        "logCumulant3": k3,
        "gammaLooks": inverse_trigamma(k2) if k2 > 0 else math.inf,
        "g0Alpha": alpha,
        "g0Gamma": gamma,
        "g0Looks": looks,
    }
    for key, p in QUANTILES:
        out[key] = np.quantile(amplitude32, p)
    return {k: num(v) for k, v in out.items()}


def amplitude_case(name, amplitude2d, mask=None):
    amplitude2d = amplitude2d.astype(np.float32)
    selected = amplitude2d if mask is None else amplitude2d[mask]
    case = {
        "name": name,
        "width": int(amplitude2d.shape[1]),
        "height": int(amplitude2d.shape[0]),
        "data": b64(amplitude2d, np.float32),
        "expected": amplitude_statistics_golden(selected.ravel()),
    }
    if mask is not None:
        case["mask"] = b64(mask.astype(np.uint8), np.uint8)
    return case


def amplitude_statistics_cases():
    rng = np.random.default_rng(2024)
    looks = 4.0
    gamma_amp = np.sqrt(2.5 * rng.gamma(looks, 1 / looks, size=(48, 48)))
    # G0 intensity: inverse-Gamma texture X = gamma / Gamma(-alpha, 1) times Gamma(L, 1/L) speckle.
    alpha, gamma, L = -3.0, 2.0, 3.0
    texture = gamma / rng.gamma(-alpha, 1.0, size=(48, 48))
    g0_amp = np.sqrt(texture * rng.gamma(L, 1 / L, size=(48, 48)))
    masked = np.sqrt(rng.gamma(2.0, 0.5, size=(32, 32)))
    mask = rng.random((32, 32)) > 0.5
    with_zeros = np.sqrt(rng.gamma(1.0, 1.0, size=(16, 16)))
    with_zeros[rng.random((16, 16)) > 0.8] = 0
    return {
        "versions": versions(),
        "truth": {"gammaLooks": looks, "g0": {"alpha": alpha, "gamma": gamma, "looks": L}},
        "cases": [
            amplitude_case("Gamma speckle, 4 looks", gamma_amp),
            amplitude_case("G0 clutter, alpha -3, gamma 2, 3 looks", g0_amp),
            amplitude_case("masked", masked, mask),
            amplitude_case("with zero pixels", with_zeros),
            amplitude_case("constant", np.full((4, 5), 0.7)),
        ],
    }


# ---------------------------------------------------------------- amplitude distances


def histogram_distances(a, b, bins, lo, hi, pseudo):
    ha, _ = np.histogram(a.astype(np.float64), bins=bins, range=(lo, hi))
    hb, _ = np.histogram(b.astype(np.float64), bins=bins, range=(lo, hi))
    p = ha / ha.sum()
    q = hb / hb.sum()
    bc = np.sum(np.sqrt(p * q))
    return {
        "kl": scipy.stats.entropy(ha + pseudo, hb + pseudo),
        "js": scipy.spatial.distance.jensenshannon(p, q) ** 2,
        "hellinger": np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)),
        "bhattacharyya": (-np.log(bc) if bc > 0 else math.inf) if bc < 1 else 0.0,
    }


def distance_case(name, a, b, domain, bins, pseudo):
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if domain["kind"] == "amplitude":
        da, db, lo, hi = a, b, 0.0, 1.0
    else:
        floor = 10 ** (domain["floorDb"] / 20)
        to_db = lambda s: (20 * np.log10(np.maximum(s.astype(np.float64), floor))).astype(np.float32)
        da, db, lo, hi = to_db(a), to_db(b), domain["floorDb"], 0.0
    expected = {
        "wasserstein": scipy.stats.wasserstein_distance(da.astype(np.float64), db.astype(np.float64)),
        "ks": scipy.stats.ks_2samp(da.astype(np.float64), db.astype(np.float64)).statistic,
        **histogram_distances(da, db, bins, lo, hi, pseudo),
    }
    return {
        "name": name,
        "a": b64(a, np.float32),
        "b": b64(b, np.float32),
        "domain": domain,
        "bins": bins,
        "klPseudoCount": pseudo,
        "expected": {k: num(v) for k, v in expected.items()},
    }


def amplitude_distance_cases():
    rng = np.random.default_rng(77)
    a = np.clip(rng.gamma(3.0, 0.1, size=1200), 0, 1)
    b = np.clip(rng.gamma(2.0, 0.13, size=800), 0, 1)
    ties_a = np.floor(rng.random(1500) * 32) / 32
    ties_b = np.floor(rng.beta(2, 3, size=900) * 32) / 32
    with_zero = a.copy()
    with_zero[:40] = 0
    return {
        "versions": versions(),
        "cases": [
            distance_case("gamma-like sets of different sizes, amplitude domain", a, b, {"kind": "amplitude"}, 64, 1.0),
            distance_case("same, 256 bins, no smoothing", a, b, {"kind": "amplitude"}, 256, 0.0),
            distance_case("same, decibel domain floored at -40 dB", with_zero, b, {"kind": "db", "floorDb": -40.0}, 50, 0.5),
            distance_case("many ties", ties_a, ties_b, {"kind": "amplitude"}, 32, 1.0),
            distance_case("identical sets", a, a, {"kind": "amplitude"}, 64, 1.0),
            distance_case("disjoint supports", a * 0.4, 0.6 + b * 0.4, {"kind": "amplitude"}, 10, 0.0),
        ],
    }


# ---------------------------------------------------------------- embeddings


def fid_reference(x, y):
    """pytorch-fid's formula, with scipy.linalg.sqrtm of the (non-symmetric) product."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid_reference(x, y):
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def cmmd_reference(x, y):
    """google-research/cmmd distance.mmd, in float64."""
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    xs, ys = torch.diag(x @ x.T), torch.diag(y @ y.T)
    gamma = 1 / (2 * 10**2)
    kxx = torch.mean(torch.exp(-gamma * (-2 * x @ x.T + xs[:, None] + xs[None, :])))
    kxy = torch.mean(torch.exp(-gamma * (-2 * x @ y.T + xs[:, None] + ys[None, :])))
    kyy = torch.mean(torch.exp(-gamma * (-2 * y @ y.T + ys[:, None] + ys[None, :])))
    return float(1000 * (kxx + kyy - 2 * kxy))


def embedding_cases():
    rng = np.random.default_rng(5)
    dim = 6
    mix = rng.normal(size=(dim, dim))
    x = (rng.normal(size=(40, dim)) @ mix).astype(np.float32)
    y = (rng.normal(size=(35, dim)) @ (mix * 0.8) + 0.5).astype(np.float32)
    unit = lambda e: (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)
    ux, uy = unit(x), unit(y)
    x64, y64, ux64, uy64 = (a.astype(np.float64) for a in (x, y, ux, uy))
    sym = rng.normal(size=(9, 9))
    sym = sym + sym.T
    sym[:, 4] = 0
    sym[4, :] = 0  # a zero row exercises the skipped reflector
    return {
        "versions": versions(),
        "x": {"count": 40, "dim": dim, "data": b64(x, np.float32)},
        "y": {"count": 35, "dim": dim, "data": b64(y, np.float32)},
        "unitX": {"count": 40, "dim": dim, "data": b64(ux, np.float32)},
        "unitY": {"count": 35, "dim": dim, "data": b64(uy, np.float32)},
        "fid": fid_reference(x64, y64),
        "fidSelf": fid_reference(x64, x64),
        "kid": kid_reference(x64, y64),
        "cmmd": cmmd_reference(ux64, uy64),
        "symmetric": {"n": 9, "matrix": nums(sym), "eigenvalues": nums(np.linalg.eigvalsh(sym))},
    }


# ---------------------------------------------------------------- the SAR texture chain and sets


def normalise(amplitude32, mask=None):
    a = amplitude32.astype(np.float64)
    sel = a if mask is None else a[mask]
    m, s = sel.mean(), sel.std()
    return np.clip(a / (m + 3 * s), 0, 1), m, s


def texture(amplitude32, levels, distances, angles_deg, mask=None):
    v, _, _ = normalise(amplitude32, mask)
    q = np.minimum(levels - 1, np.floor(v * levels)).astype(np.uint16)
    if mask is not None:
        q = np.where(mask, q, levels).astype(np.uint16)
        P = graycomatrix(q, distances, np.deg2rad(angles_deg), levels=levels + 1)[:levels, :levels].astype(np.float64)
        P = P + np.transpose(P, (1, 0, 2, 3))
    else:
        P = graycomatrix(q, distances, np.deg2rad(angles_deg), levels=levels, symmetric=True, normed=True)
    return {p: graycoprops(P, p) for p in PROPS}


def to_amplitude(values, unit):
    if unit == "amplitude":
        return values.astype(np.float32)
    if unit == "intensity":
        return np.sqrt(values.astype(np.float64)).astype(np.float32)
    return (10.0 ** (values.astype(np.float64) / 20)).astype(np.float32)


def set_texture(props_list):
    means = {p: np.mean([t[p] for t in props_list], axis=0) for p in PROPS}
    return means


def canberra(ma, mb):
    u = np.concatenate([ma[p].ravel() for p in PROPS])
    v = np.concatenate([mb[p].ravel() for p in PROPS])
    return scipy.spatial.distance.canberra(u, v)


def chain_cases():
    rng = np.random.default_rng(31)
    levels, distances, angles = 16, [1, 2], [0, 45, 90, 135]
    images = {
        "db speckle 41x37": ("db", 10 * np.log10(rng.gamma(3.0, 1 / 3.0, size=(37, 41)) * 0.05)),
        "intensity 30x30": ("intensity", rng.gamma(1.0, 2.0, size=(30, 30))),
        "amplitude 20x50": ("amplitude", np.sqrt(rng.gamma(5.0, 0.2, size=(50, 20)))),
    }
    mask = rng.random((37, 41)) > 0.2
    cases = []
    for name, (unit, values) in images.items():
        values = values.astype(np.float32)
        amp = to_amplitude(values, unit)
        _, mean, std = normalise(amp)
        cases.append({
            "name": name,
            "unit": unit,
            "width": int(values.shape[1]),
            "height": int(values.shape[0]),
            "data": b64(values, np.float32),
            "amplitude": b64(amp, np.float32),
            # numpy's mean and std of A as float64; sardine must reproduce them bit for bit.
            "moments": {"mean": mean, "std": std},
            "glcm": {p: [nums(r) for r in t] for p, t in texture(amp, levels, distances, angles).items()},
        })
    first = images["db speckle 41x37"]
    masked_amp = to_amplitude(first[1].astype(np.float32), "db")
    _, masked_mean, masked_std = normalise(masked_amp, mask)
    masked = {
        "name": "db speckle 41x37 with a mask",
        "mask": b64(mask.astype(np.uint8), np.uint8),
        "moments": {"mean": masked_mean, "std": masked_std},
        "glcm": {p: [nums(r) for r in t] for p, t in texture(masked_amp, levels, distances, angles, mask).items()},
    }
    # Sets: a = first two images, b = the third; distances on pooled normalised samples.
    amps = [to_amplitude(v.astype(np.float32), u) for u, v in images.values()]
    textures = [texture(a, levels, distances, angles) for a in amps]
    mean_a, mean_b = set_texture(textures[:2]), set_texture(textures[2:])
    pooled_a = np.concatenate([normalise(a)[0].ravel() for a in amps[:2]]).astype(np.float32)
    pooled_b = normalise(amps[2])[0].ravel().astype(np.float32)
    hist = histogram_distances(pooled_a, pooled_b, 256, 0.0, 1.0, 1.0)
    sets = {
        "a": [0, 1],
        "b": [2],
        "meanA": {p: [nums(r) for r in m] for p, m in mean_a.items()},
        "meanB": {p: [nums(r) for r in m] for p, m in mean_b.items()},
        "canberra": canberra(mean_a, mean_b),
        "amplitude": {
            "wasserstein": scipy.stats.wasserstein_distance(pooled_a.astype(np.float64), pooled_b.astype(np.float64)),
            "ks": scipy.stats.ks_2samp(pooled_a.astype(np.float64), pooled_b.astype(np.float64)).statistic,
            **{k: num(v) for k, v in hist.items()},
        },
    }
    return {
        "versions": versions(),
        "levels": levels,
        "distances": distances,
        "angles": angles,
        "bins": 256,
        "klPseudoCount": 1.0,
        "images": cases,
        "masked": masked,
        "sets": sets,
    }


# ---------------------------------------------------------------- CLI goldens on real files


def cli_cases():
    """Files for `sardine stats` / `sardine compare`, and what scipy / scikit-image say about them."""
    images_dir = OUT / "images"
    (images_dir / "set").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(99)
    tif_a = (10 * np.log10(rng.gamma(2.0, 0.5, size=(48, 40)) * 0.1)).astype(np.float32)
    tif_b = (10 * np.log10(rng.gamma(6.0, 1 / 6.0, size=(40, 56)) * 0.02)).astype(np.float32)
    tifffile.imwrite(images_dir / "set" / "speckle-a.tif", tif_a)
    tifffile.imwrite(images_dir / "set" / "speckle-b.tif", tif_b)
    png = np.clip(np.sqrt(rng.gamma(3.0, 1 / 3.0, size=(36, 44))) * 90, 0, 255).astype(np.uint8)
    Image.fromarray(png, mode="L").save(images_dir / "amplitude.png")

    # No-data pixels (GDAL_NODATA = -99) are left out of every statistic and every GLCM pair.
    nodata = (10 * np.log10(rng.gamma(4.0, 0.25, size=(24, 30)) * 0.05)).astype(np.float32)
    nodata_mask = rng.random(nodata.shape) > 0.15
    nodata[~nodata_mask] = -99
    tifffile.imwrite(images_dir / "nodata.tif", nodata, extratags=[(42113, "s", 0, "-99", False)])
    # Bad input: a NaN pixel; colour bands that differ.
    nan_tif = np.ones((6, 5), dtype=np.float32)
    nan_tif[2, 3] = np.nan
    tifffile.imwrite(images_dir / "nan.tif", nan_tif)
    tifffile.imwrite(images_dir / "constant.tif", np.full((8, 8), 0.5, dtype=np.float32))
    colour = rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    Image.fromarray(colour, mode="RGB").save(images_dir / "colour.png")

    levels, distances, angles = 64, [1, 2], [0, 45, 90, 135]
    scene = tifffile.imread(SCENE).astype(np.float32)

    def stats(values, unit, mask=None):
        amp = to_amplitude(values, unit)
        return {
            "amplitude": amplitude_statistics_golden(amp.ravel() if mask is None else amp[mask]),
            "glcm": {p: [nums(r) for r in t] for p, t in texture(amp, levels, distances, angles, mask).items()},
        }

    set_amps = [to_amplitude(v, "db") for v in (tif_a, tif_b)]
    scene_amp = to_amplitude(scene, "db")
    pooled_a = normalise(scene_amp)[0].ravel().astype(np.float32)
    pooled_b = np.concatenate([normalise(a)[0].ravel() for a in set_amps]).astype(np.float32)
    tex_a = set_texture([texture(scene_amp, levels, [1], [0, 45, 90, 135])])
    tex_b = set_texture([texture(a, levels, [1], [0, 45, 90, 135]) for a in set_amps])
    hist = histogram_distances(pooled_a, pooled_b, 256, 0.0, 1.0, 1.0)
    return {
        "versions": versions(),
        "stats": {
            "options": {"levels": levels, "distances": distances, "angles": angles},
            "scene": {"file": SCENE_FILE, "unit": "db", **stats(scene, "db")},
            "png": {"file": "test/fixtures/metrics/images/amplitude.png", "unit": "amplitude", **stats(png.astype(np.float32), "amplitude")},
            "nodata": {"file": "test/fixtures/metrics/images/nodata.tif", "unit": "db", **stats(nodata, "db", nodata_mask)},
            "constant": {"file": "test/fixtures/metrics/images/constant.tif", "unit": "amplitude", **stats(np.full((8, 8), 0.5, dtype=np.float32), "amplitude")},
        },
        "compare": {
            "a": SCENE_FILE,
            "b": "test/fixtures/metrics/images/set",
            "unit": "db",
            "defaults": {"levels": 64, "distances": [1], "angles": [0, 45, 90, 135], "bins": 256, "klPseudoCount": 1.0},
            "amplitude": {
                "wasserstein": scipy.stats.wasserstein_distance(pooled_a.astype(np.float64), pooled_b.astype(np.float64)),
                "ks": scipy.stats.ks_2samp(pooled_a.astype(np.float64), pooled_b.astype(np.float64)).statistic,
                **{k: num(v) for k, v in hist.items()},
            },
            "glcm": {
                "a": {p: [nums(r) for r in m] for p, m in tex_a.items()},
                "b": {p: [nums(r) for r in m] for p, m in tex_b.items()},
                "canberra": canberra(tex_a, tex_b),
            },
        },
    }


def main():
    write("special-functions.json", special_functions())
    write("glcm.json", glcm_cases())
    write("amplitude-statistics.json", amplitude_statistics_cases())
    write("amplitude-distances.json", amplitude_distance_cases())
    write("embeddings.json", embedding_cases())
    write("texture-chain.json", chain_cases())
    write("cli.json", cli_cases())
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f"{f.relative_to(ROOT)}  {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
