"""The PyTorch side of bench/wasm-kernels.ts: the same kernels on the same inputs.

  .venv/bin/python bench/wasm_kernels_peer.py <dir> <reps>

Reads <dir>/shapes.json and <dir>/<name>.bin (float32, int32 for `ids`; tfjs layouts: NHWC
activations, HWIO filters) and prints JSON {op name: {ms1, ms2, sum}}: the median ms on 1 and on 2
threads and the sum of the squared result, for the ops bench/wasm-kernels.ts lists.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import conv2d

folder, reps = Path(sys.argv[1]), int(sys.argv[2])
shapes = json.loads((folder / "shapes.json").read_text())


def load(name, dtype=np.float32):
    return torch.from_numpy(np.fromfile(folder / f"{name}.bin", dtype=dtype).reshape(shapes[name]))


nchw = lambda t: t.permute(0, 3, 1, 2).contiguous()
x, dy, dy2 = nchw(load("x")), nchw(load("dy")), nchw(load("dy2"))
w = load("w").permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
linear, q, k, p = load("linear"), load("q"), load("k"), load("p")
rows, ids = load("rows"), load("ids", np.int32).long()
vocab = 49408


def backward(grad_out, stride, mask):
    """aten's convolution backward alone: mask picks the input or the weight gradient."""
    grads = torch.ops.aten.convolution_backward(grad_out, x, w, None, [stride, stride], [1, 1], [1, 1], False, [0, 0], 1, mask)
    return grads[0] if mask[0] else grads[1]


OPS = {
    "conv2d 3×3 s1 (forward, reference)": lambda: conv2d(x, w, padding=1),
    "Conv2DBackpropInput 3×3 s1": lambda: backward(dy, 1, [True, False, False]),
    "Conv2DBackpropFilter 3×3 s1": lambda: backward(dy, 1, [False, True, False]),
    "Conv2DBackpropInput 3×3 s2": lambda: backward(dy2, 2, [True, False, False]),
    "Conv2DBackpropFilter 3×3 s2": lambda: backward(dy2, 2, [False, True, False]),
    "BatchMatMul dy·Wᵀ (Linear dx)": lambda: dy.permute(0, 2, 3, 1).reshape(-1, 64) @ linear.T,
    "BatchMatMul xᵀ·dy (Linear dW)": lambda: x.permute(0, 2, 3, 1).reshape(-1, 64).T @ dy.permute(0, 2, 3, 1).reshape(-1, 64),
    "BatchMatMul q·kᵀ (64 × 256 × 8)": lambda: q @ k.transpose(-1, -2),
    "BatchMatMul pᵀ·q (attention dV)": lambda: p.transpose(-1, -2) @ q,
    "UnsortedSegmentSum 49408 × 768": lambda: torch.zeros(vocab, rows.shape[1]).index_add_(0, ids, rows),
}


def median_ms(f):
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


result = {}
with torch.no_grad():
    for name, f in OPS.items():
        torch.set_num_threads(1)
        ms1 = median_ms(f)
        torch.set_num_threads(2)
        ms2 = median_ms(f)
        result[name] = {"ms1": ms1, "ms2": ms2, "sum": float((f().double() ** 2).sum())}
print(json.dumps(result))
