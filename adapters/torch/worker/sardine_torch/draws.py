"""sardine's random streams, reproduced value for value.

Training draws: the counter-based streams of adapters/tfjs/training/training-draws.ts (Philox2x32-10 keyed
by mixSeed words, Box–Muller from +, −, ×, ÷ and √ only), vectorised with numpy. The file there is the
specification; every operation below is the same IEEE 754 operation in the same order, so the values are
the same bits.

Generation noise: the sequential xoshiro128** stream of adapters/tfjs/sampling/gaussian-noise.ts (one per
sample: its seed and replicate).
"""

from __future__ import annotations

import math

import numpy as np

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF

# DrawPurpose of training-draws.ts.
DATA_ORDER = 1
CAPTION_DROPOUT = 2
TIMESTEPS = 3
NOISE = 4
NOISE_OFFSET = 5
LATENT_SAMPLE = 6
LORA_DROPOUT = 7
LORA_INIT = 8
VAE_SAMPLE = 9

STREAM_SALT = 0x5851F42D
PHILOX_M = 0xD256D193
PHILOX_W = 0x9E3779B9
LN2 = 0.6931471805599453
SQRT_HALF = 0.7071067811865476
HALF_PI = 1.5707963267948966


def _imul(a: int, b: int) -> int:
    return (a * b) & MASK32


def _splitmix32(state: int) -> tuple[int, int]:
    nxt = (state + 0x9E3779B9) & MASK32
    z = nxt
    z = _imul(z ^ (z >> 16), 0x85EBCA6B)
    z = _imul(z ^ (z >> 13), 0xC2B2AE35)
    return nxt, (z ^ (z >> 16)) & MASK32


def mix_seed(*words: int) -> int:
    """mixSeed of adapters/data/seeded-random.ts: 32-bit words into one 32-bit key."""
    state = 0x6A09E667
    out = 0
    for word in words:
        state, out = _splitmix32(state ^ _imul(word & MASK32, 0x27D4EB2D))
    return out


def hash_string(text: str) -> int:
    """hashString of seeded-random.ts: FNV-1a over UTF-16 code units."""
    h = 0x811C9DC5
    units = text.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = _imul(h ^ (units[i] | (units[i + 1] << 8)), 0x01000193)
    return h


def philox2x32(c0: np.ndarray, c1: int, key: int) -> tuple[np.ndarray, np.ndarray]:
    """Philox2x32-10 of the counters (c0[i], c1) under `key`: the two output words of each, as uint64 arrays."""
    x0 = c0.astype(np.uint64)
    x1 = np.full_like(x0, c1 & MASK32)
    k = key & MASK32
    for round_ in range(10):
        if round_ > 0:
            k = (k + PHILOX_W) & MASK32
        product = x0 * np.uint64(PHILOX_M)
        x0, x1 = (product >> np.uint64(32)) ^ np.uint64(k) ^ x1, product & np.uint64(MASK32)
    return x0, x1


def _log_of_uniform(word: np.ndarray) -> np.ndarray:
    x = word.astype(np.float64) + 0.5
    fraction, exponent = np.frexp(x)
    e = exponent.astype(np.float64) - 1
    m = fraction * 2
    big = m >= 2 * SQRT_HALF
    m = np.where(big, m / 2, m)
    e = np.where(big, e + 1, e)
    s = (m - 1) / (m + 1)
    s2 = s * s
    series = np.full_like(s, 1 / 17)
    for i in range(7, -1, -1):
        series = series * s2 + 1 / (2 * i + 1)
    return 2 * s * series + (e - 32) * LN2


def _cos_sin_of_uniform(word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    quadrant = word >> np.uint64(30)
    angle = (((word & np.uint64(0x3FFFFFFF)).astype(np.float64) + 0.5) / 1073741824) * HALF_PI
    a2 = angle * angle
    c = np.ones_like(angle)
    s = np.ones_like(angle)
    for i in range(10, 0, -1):
        c = 1 - (a2 / ((2 * i - 1) * (2 * i))) * c
        s = 1 - (a2 / ((2 * i) * (2 * i + 1))) * s
    s = angle * s
    cos = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    sin = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    return cos, sin


class TrainingDraws:
    """One keyed stream of words, read from its start (TrainingDraws of training-draws.ts)."""

    def __init__(self, seed: int, purpose: int, *key: int) -> None:
        self.key = mix_seed(seed, purpose, *key)
        self.salt = mix_seed(STREAM_SALT, seed, purpose, *key)
        self.position = 0

    def _words(self, start: int, count: int) -> np.ndarray:
        first = start // 2
        blocks = (start + count + 1) // 2 - first
        a, b = philox2x32(np.arange(first, first + blocks, dtype=np.uint64), self.salt, self.key)
        words = np.empty(2 * blocks, dtype=np.uint64)
        words[0::2], words[1::2] = a, b
        return words[start - 2 * first : start - 2 * first + count]

    def uniforms(self, count: int) -> np.ndarray:
        """The next `count` uniforms in (0, 1), float64."""
        words = self._words(self.position, count)
        self.position += count
        return (words.astype(np.float64) + 0.5) / 4294967296

    def integers(self, low: int, high: int, count: int) -> np.ndarray:
        """`count` integers in [low, high], both included."""
        return low + np.floor(self.uniforms(count) * (high - low + 1)).astype(np.int64)

    def chances(self, p: float, count: int) -> np.ndarray:
        return self.uniforms(count) < p

    def normals(self, count: int) -> np.ndarray:
        """`count` standard normal values, float32 (Box–Muller pairs from the next aligned pair of words)."""
        if self.position % 2 == 1:
            self.position += 1
        pairs = (count + 1) // 2
        a, b = philox2x32(np.arange(self.position // 2, self.position // 2 + pairs, dtype=np.uint64), self.salt, self.key)
        self.position += 2 * pairs
        radius = np.sqrt(-2 * _log_of_uniform(a))
        cos, sin = _cos_sin_of_uniform(b)
        out = np.empty(2 * pairs, dtype=np.float64)
        out[0::2] = radius * cos
        out[1::2] = radius * sin
        return out[:count].astype(np.float32)


def permutation(draws: TrainingDraws, n: int) -> np.ndarray:
    """permutation of training-draws.ts: Fisher–Yates from the last position down, one uniform per swap."""
    out = np.arange(n, dtype=np.int64)
    if n < 2:
        return out
    u = draws.uniforms(n - 1)
    picks = np.floor(u * np.arange(n, 1, -1, dtype=np.float64)).astype(np.int64)
    for step, i in enumerate(range(n - 1, 0, -1)):
        j = picks[step]
        out[i], out[j] = out[j], out[i]
    return out


class GaussianStream:
    """sardine's generation noise (gaussian-noise.ts): xoshiro128** seeded by SplitMix64(seed · 2^32 + stream),
    uniforms of 53 bits from two outputs, Box–Muller pairs rounded to float32."""

    def __init__(self, seed: int, stream: int) -> None:
        x = (seed << 32) | stream
        words: list[int] = []
        for _ in range(2):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            z ^= z >> 31
            words += [z >> 32, z & MASK32]
        self.state = words
        self.spare: float | None = None

    def values(self, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.float32)
        s0, s1, s2, s3 = self.state
        spare = self.spare
        log, sqrt, cos, sin, two_pi = math.log, math.sqrt, math.cos, math.sin, 2 * math.pi
        i = 0
        while i < count:
            if spare is not None:
                out[i] = spare
                spare = None
                i += 1
                continue
            uniform = []
            for _ in range(2):
                halves = []
                for _ in range(2):
                    r = (((((s1 * 5) & MASK32) << 7) | (((s1 * 5) & MASK32) >> 25)) & MASK32) * 9 & MASK32
                    t = (s1 << 9) & MASK32
                    s2 ^= s0
                    s3 ^= s1
                    s1 ^= s2
                    s0 ^= s3
                    s2 ^= t
                    s3 = ((s3 << 11) | (s3 >> 21)) & MASK32
                    halves.append(r)
                uniform.append(((halves[0] >> 5) * 67108864 + (halves[1] >> 6)) / 9007199254740992)
            radius = sqrt(-2 * log(1 - uniform[0]))
            angle = two_pi * uniform[1]
            out[i] = radius * cos(angle)
            spare = float(np.float32(radius * sin(angle)))
            i += 1
        self.state = [s0, s1, s2, s3]
        self.spare = spare
        return out
