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
VALIDATION_SPLIT = 10
VALIDATION_NOISE = 11

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


def _xoshiro_step(s: list) -> tuple:
    """One xoshiro128** step on a state of four uint32 words (ints or numpy arrays): the output, the next state."""
    s0, s1, s2, s3 = s
    five = (s1 * 5) & MASK32
    result = ((((five << 7) | (five >> 25)) & MASK32) * 9) & MASK32
    t = (s1 << 9) & MASK32
    s2 = s2 ^ s0
    s3 = s3 ^ s1
    s1 = s1 ^ s2
    s0 = s0 ^ s3
    s2 = s2 ^ t
    s3 = ((s3 << 11) | (s3 >> 21)) & MASK32
    return result, [s0, s1, s2, s3]


def _bits(state: list) -> np.ndarray:
    """A state's 128 bits (word w's bit j at 32·w + j), as a uint8 column per state (states may be arrays)."""
    return np.stack([(np.asarray(w, dtype=np.uint64) >> np.uint64(j)) & np.uint64(1) for w in state for j in range(32)]).astype(np.uint8)


def _words_of(bits: np.ndarray) -> list:
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64)).reshape(32, *([1] * (bits.ndim - 1)))
    return [(bits[32 * w : 32 * w + 32].astype(np.uint64) * weights).sum(axis=0) for w in range(4)]


class _Jumps:
    """xoshiro128**'s state update is linear over GF(2): T^(2^k) as 128 × 128 bit matrices, made on first use,
    so a state 2^k steps ahead is one matrix–vector product."""

    def __init__(self) -> None:
        # Column i: the state after one step from the state with only bit i set.
        units = [np.where(np.arange(128) // 32 == w, np.uint64(1) << (np.arange(128) % 32).astype(np.uint64), np.uint64(0)) for w in range(4)]
        self.powers = [_bits(_xoshiro_step(units)[1]).astype(np.int64)]

    def power(self, k: int) -> np.ndarray:
        while len(self.powers) <= k:
            self.powers.append((self.powers[-1] @ self.powers[-1]) % 2)
        return self.powers[k]

    def ahead(self, state: list, steps: int) -> list:
        bits = _bits(state).astype(np.int64)
        k = 0
        while steps:
            if steps & 1:
                bits = (self.power(k) @ bits) % 2
            steps >>= 1
            k += 1
        return [int(w) for w in _words_of(bits)]


_JUMPS = _Jumps()
# Below this many words a plain loop is faster than the lanes.
_LANE_THRESHOLD = 4096
_LANE_LOG2 = 8


class GaussianStream:
    """sardine's generation noise (gaussian-noise.ts): xoshiro128** seeded by SplitMix64(seed · 2^32 + stream),
    uniforms of 53 bits from two outputs, Box–Muller pairs (libm's log, cos and sin, as the tfjs engine's Math)
    rounded to float32. Long draws (an SDXL latent is 65,536 values) run the generator as parallel lanes, each
    started 2^8 steps after the previous one by a jump matrix, instead of one word at a time in Python."""

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

    def _words(self, count: int) -> np.ndarray:
        """The next `count` outputs, uint64."""
        if count <= _LANE_THRESHOLD:
            out = np.empty(count, dtype=np.uint64)
            state = self.state
            for i in range(count):
                out[i], state = _xoshiro_step(state)
            self.state = [int(w) for w in state]
            return out
        length = 1 << _LANE_LOG2
        lanes = -(-count // length)
        jump = _JUMPS.power(_LANE_LOG2)
        starts = np.empty((128, lanes), dtype=np.int64)
        bits = _bits(self.state).astype(np.int64)
        for lane in range(lanes):
            starts[:, lane] = bits
            bits = (jump @ bits) % 2
        state = _words_of(starts)
        out = np.empty((lanes, length), dtype=np.uint64)
        for j in range(length):
            out[:, j], state = _xoshiro_step(state)
        self.state = _JUMPS.ahead(self.state, count)
        return out.reshape(-1)[:count]

    def values(self, count: int) -> np.ndarray:
        out: list[float] = []
        if count > 0 and self.spare is not None:
            out.append(self.spare)
            self.spare = None
        pairs = (count - len(out) + 1) // 2
        words = self._words(4 * pairs)
        first = ((words[0::4] >> np.uint64(5)) * np.uint64(67108864) + (words[1::4] >> np.uint64(6))).astype(np.float64) / 9007199254740992
        second = ((words[2::4] >> np.uint64(5)) * np.uint64(67108864) + (words[3::4] >> np.uint64(6))).astype(np.float64) / 9007199254740992
        log, sqrt, cos, sin, two_pi = math.log, math.sqrt, math.cos, math.sin, 2 * math.pi
        for a, b in zip(first.tolist(), second.tolist()):
            radius = sqrt(-2 * log(1 - a))
            angle = two_pi * b
            out.append(radius * cos(angle))
            out.append(radius * sin(angle))
        if len(out) > count:
            self.spare = float(np.float32(out.pop()))
        return np.array(out, dtype=np.float32)
