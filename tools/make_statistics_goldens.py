"""Golden values for sardine's statistics (intervals, tests, corrections), from scipy and statsmodels.

Run from the repository root:  .venv/bin/python tools/make_statistics_goldens.py
(needs statsmodels, pinned in tools/requirements.txt; tools/setup-reference-env.sh installs it).

Writes test/fixtures/metrics/statistics.json. Every random input comes from a seeded numpy
Generator, so a rerun rewrites the same bytes. What is checked against what:
  - the normal and Student-t functions: scipy.special.ndtr / ndtri / betainc, scipy.stats.t;
  - bootstrap intervals: scipy.stats.bootstrap (percentile and BCa) given a bootstrap distribution
    (passed back through `bootstrap_result` with n_resamples=0, so scipy computes the interval of
    exactly those resamples; the jackknife it computes itself from the data);
  - permutation tests: scipy.stats.permutation_test, paired ("samples") and unpaired
    ("independent"), exact (every arrangement) and randomised (its null distribution is kept);
  - Welch's test and the t interval of a mean: scipy.stats.ttest_ind(equal_var=False),
    scipy.stats.ttest_1samp, with their confidence intervals;
  - Holm's adjustment: statsmodels.stats.multitest.multipletests(method="holm").
"""

import json
from pathlib import Path

import numpy as np
import scipy
import scipy.special
import scipy.stats
import statsmodels
from statsmodels.stats.multitest import multipletests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "metrics" / "statistics.json"


def num(x):
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def nums(xs):
    return [num(x) for x in xs]


def special_functions():
    xs = [-38.0, -20.0, -8.5, -5.0, -1.96, -0.5, -0.3, 0.0, 0.2, 0.46875, 0.47, 1.0, 2.5, 4.0, 4.1, 6.0, 9.0]
    ps = [1e-300, 1e-30, 1e-10, 1e-5, 0.001, 0.025, 0.1, 0.3, 0.5, 0.6, 0.8, 0.975, 0.999, 1 - 1e-10]
    t_cases = [(t, df) for df in [1.0, 2.0, 2.7, 5.0, 30.0, 1000.0] for t in [-12.0, -2.5, -0.4, 0.0, 0.7, 3.1, 40.0]]
    q_cases = [(p, df) for df in [1.0, 2.0, 3.4, 9.0, 120.0] for p in [1e-6, 0.005, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999]]
    beta_cases = [(x, a, b) for (a, b) in [(0.5, 0.5), (1.0, 3.0), (2.5, 0.5), (15.0, 0.5), (40.0, 60.0)] for x in [1e-4, 0.1, 0.5, 0.77, 0.999]]
    return {
        "ndtr": [{"x": x, "p": num(scipy.special.ndtr(x))} for x in xs],
        "ndtri": [{"p": p, "x": num(scipy.special.ndtri(p))} for p in ps],
        "betainc": [{"x": x, "a": a, "b": b, "value": num(scipy.special.betainc(a, b, x))} for x, a, b in beta_cases],
        "tCdf": [{"t": t, "df": df, "cdf": num(scipy.stats.t.cdf(t, df)), "twoSided": num(2 * scipy.stats.t.sf(abs(t), df))} for t, df in t_cases],
        "tQuantile": [{"p": p, "df": df, "t": num(scipy.stats.t.ppf(p, df))} for p, df in q_cases],
    }


class Distribution:
    """What scipy.stats.bootstrap reads of a previous result."""

    def __init__(self, values):
        self.bootstrap_distribution = values


def ratio_of_means(x, axis=-1):
    return np.mean(x, axis=axis) / np.mean(x ** 2, axis=axis)


STATISTICS = {
    "mean": lambda x, axis=-1: np.mean(x, axis=axis),
    "std": lambda x, axis=-1: np.std(x, axis=axis, ddof=1),
    "ratioOfMeans": ratio_of_means,
}


def bootstrap_cases(rng):
    cases = []
    for name, statistic in STATISTICS.items():
        for n, resamples in [(9, 400), (17, 1000)]:
            data = rng.gamma(2.0, 1.5, size=n)
            # Resamples drawn here, the way any bootstrap draws them: indices with replacement.
            indices = rng.integers(0, n, size=(resamples, n))
            distribution = statistic(data[indices], axis=-1)
            # The observed value as numpy computes it: a resample that permutes the data ties with it
            # only to the last bit, so the golden carries it rather than a recomputation.
            entry = {"statistic": name, "data": nums(data), "observed": num(statistic(data)), "distribution": nums(distribution)}
            for level in [0.95, 0.9]:
                for method in ["percentile", "BCa"]:
                    result = scipy.stats.bootstrap(
                        (data,), statistic, n_resamples=0, bootstrap_result=Distribution(distribution),
                        confidence_level=level, method=method, vectorized=True,
                    )
                    ci = result.confidence_interval
                    entry[f"{method.lower()}@{level}"] = [num(ci.low), num(ci.high)]
            entry["standardError"] = num(result.standard_error)
            cases.append(entry)
    # Two independent samples (a difference of means): BCa's jackknife runs over each sample.
    a = rng.normal(1.0, 1.0, size=8)
    b = rng.normal(0.2, 2.0, size=11)
    ia = rng.integers(0, 8, size=(800, 8))
    ib = rng.integers(0, 11, size=(800, 11))
    distribution = a[ia].mean(axis=-1) - b[ib].mean(axis=-1)
    result = scipy.stats.bootstrap(
        (a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis), n_resamples=0,
        bootstrap_result=Distribution(distribution), method="BCa", vectorized=True,
    )
    two_sample = {"a": nums(a), "b": nums(b), "distribution": nums(distribution),
                  "bca@0.95": [num(result.confidence_interval.low), num(result.confidence_interval.high)]}
    return cases, two_sample


def mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_cases(rng):
    cases = []
    # Paired, exact: 2^8 sign arrangements.
    x = rng.normal(0.4, 1.0, size=8)
    y = rng.normal(0.0, 1.0, size=8)
    exact = scipy.stats.permutation_test((x, y), mean_difference, permutation_type="samples", n_resamples=10_000, vectorized=True)
    cases.append({"kind": "paired", "exact": True, "x": nums(x), "y": nums(y), "observed": num(exact.statistic),
                  "null": nums(np.sort(exact.null_distribution)), "p": num(exact.pvalue)})
    # Paired, randomised (2^14 arrangements > 999 resamples): the null distribution is scipy's own draw.
    x = rng.normal(0.3, 1.0, size=14)
    y = rng.normal(0.0, 1.0, size=14)
    randomised = scipy.stats.permutation_test((x, y), mean_difference, permutation_type="samples", n_resamples=999,
                                              vectorized=True, rng=np.random.default_rng(7))
    cases.append({"kind": "paired", "exact": False, "x": nums(x), "y": nums(y), "observed": num(randomised.statistic),
                  "null": nums(randomised.null_distribution), "p": num(randomised.pvalue)})
    # Unpaired, exact: C(9, 5) = 126 splits.
    x = rng.normal(1.0, 1.0, size=5)
    y = rng.normal(0.0, 1.0, size=4)
    independent = scipy.stats.permutation_test((x, y), mean_difference, permutation_type="independent", n_resamples=10_000, vectorized=True)
    cases.append({"kind": "unpaired", "exact": True, "x": nums(x), "y": nums(y), "observed": num(independent.statistic),
                  "null": nums(np.sort(independent.null_distribution)), "p": num(independent.pvalue)})
    return cases


def t_cases(rng):
    welch = []
    for na, nb in [(3, 3), (3, 5), (6, 2), (12, 9)]:
        a = rng.normal(1.0, 0.5, size=na)
        b = rng.normal(0.6, 1.5, size=nb)
        result = scipy.stats.ttest_ind(a, b, equal_var=False)
        ci = result.confidence_interval(0.95)
        welch.append({"a": nums(a), "b": nums(b), "t": num(result.statistic), "df": num(result.df), "p": num(result.pvalue),
                      "interval": [num(ci.low), num(ci.high)]})
    means = []
    for n in [2, 3, 5, 10]:
        values = rng.normal(4.0, 2.0, size=n)
        ci = scipy.stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
        means.append({"values": nums(values), "interval": [num(ci.low), num(ci.high)]})
    return welch, means


def holm_cases(rng):
    cases = []
    for p in [
        [0.01, 0.04, 0.03, 0.005, 0.2],
        [0.001, 0.001, 0.5, 0.02, 0.013, 0.04, 0.9, 0.0004],
        list(rng.uniform(0, 0.1, size=14)),
        [0.6, 0.7, 0.8],
    ]:
        reject, corrected, _, _ = multipletests(p, alpha=0.05, method="holm")
        cases.append({"p": nums(p), "adjusted": nums(corrected), "reject": [bool(r) for r in reject]})
    return cases


def main():
    rng = np.random.default_rng(20260)
    bootstrap, two_sample = bootstrap_cases(rng)
    welch, means = t_cases(rng)
    golden = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "statsmodels": statsmodels.__version__},
        "special": special_functions(),
        "bootstrap": bootstrap,
        "twoSampleBootstrap": two_sample,
        "permutation": permutation_cases(rng),
        "welch": welch,
        "meanInterval": means,
        "holm": holm_cases(rng),
    }
    OUT.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
