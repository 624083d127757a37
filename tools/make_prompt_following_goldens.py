"""Golden values for sardine's prompt-following scores (framework/metrics/prompt-following.ts), with numpy.

Run from the repository root:  .venv/bin/python tools/make_prompt_following_goldens.py

Writes test/fixtures/metrics/prompt-following.json: fixed image and prompt embeddings (float32,
base64 little-endian, from a seeded numpy Generator, so a rerun rewrites the same bytes), each
image's own prompt, and per image the CLIP score with every prompt (100 · cos), the gap (own score
minus the mean of the other prompts' scores), the expected rank of its own prompt and its top-1 /
top-k hits. Ties are broken by a uniformly random order and the expectation is kept: with g prompts
scoring strictly higher and t exactly as high as its own, rank = g + 1 + t/2 and
hit@k = clip((k − g) / (t + 1), 0, 1) — computed here by enumerating every order of the tied
prompts, independently of that formula. Prompt 4 repeats prompt 1's embedding, so images whose own
prompt is one of them tie exactly.
"""

import base64
import itertools
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "metrics" / "prompt-following.json"


def b64(array):
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


def unit_rows(rng, count, dim):
    x = rng.standard_normal((count, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def retrieval(scores, own, k):
    """Expected rank and top-1 / top-k hits over every order of the prompts tied with the own one."""
    others = [p for p in range(len(scores)) if p != own]
    above = sum(1 for p in others if scores[p] > scores[own])
    tied = [p for p in others if scores[p] == scores[own]]
    positions = []
    for order in itertools.permutations([own] + tied):
        positions.append(above + 1 + order.index(own))
    positions = np.array(positions, dtype=np.float64)
    return float(positions.mean()), float((positions <= 1).mean()), float((positions <= k).mean())


def main():
    rng = np.random.default_rng(20261205)
    images = unit_rows(rng, 12, 8)
    prompts = unit_rows(rng, 5, 8)
    prompts[4] = prompts[1]
    own = rng.integers(0, 5, size=12)
    own[:3] = [1, 4, 1]
    x = images.astype(np.float64)
    t = prompts.astype(np.float64)
    scores = 100 * (x @ t.T) / np.sqrt(np.sum(x * x, axis=1)[:, None] * np.sum(t * t, axis=1)[None, :])
    cases = []
    for k in (3, 7):
        clipped = min(k, len(prompts))
        rows = []
        for i in range(len(images)):
            s = scores[i]
            mine = s[own[i]]
            gap = mine - np.mean(np.delete(s, own[i]))
            rank, top1, topk = retrieval(s, int(own[i]), clipped)
            rows.append({"gap": float(gap), "rank": rank, "top1": top1, "topk": topk})
        cases.append({"k": k, "clippedK": clipped, "images": rows})
    OUT.write_text(json.dumps({
        "dim": 8,
        "images": b64(images),
        "prompts": b64(prompts),
        "own": [int(o) for o in own],
        "scores": [[float(v) for v in row] for row in scores],
        "cases": cases,
    }, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
