"""A small safetensors file written by the reference `safetensors` library, for the reader/writer tests.

test/fixtures/safetensors/dtypes.safetensors holds the same float32 values (edge cases included:
signed zeros, subnormals, ties, overflow to infinity, NaN) stored as F32, F16, BF16 and F64, each half-precision
tensor next to its exact float32 upcast as torch computes it, plus integer and boolean tensors, an empty
tensor, a scalar, and `__metadata__`.

Run from the repository root: .venv/bin/python tools/make_safetensors_fixtures.py
"""

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path("test/fixtures/safetensors")


def main() -> None:
    edge = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 65504.0, 65519.0, 65520.0, 1e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-26,
            6.103515625e-05, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 1 + 2.0**-8, 1 + 3 * 2.0**-8, 3.0e38, 1e-40,
            float("inf"), float("-inf"), float("nan")]
    rng = np.random.default_rng(5)
    values = np.concatenate([np.array(edge, dtype=np.float32), rng.standard_normal(41).astype(np.float32) * 100])
    x = torch.from_numpy(values.reshape(8, 8))
    ints = torch.tensor([0, 1, -1, 2**31 - 1, -(2**31), 123456])
    tensors = {
        "f32": x,
        "f16": x.half(),
        "f16_as_f32": x.half().float(),
        "bf16": x.bfloat16(),
        "bf16_as_f32": x.bfloat16().float(),
        "f64": x.double(),
        "i64": ints,
        "i32": ints.to(torch.int32),
        "i16": torch.tensor([0, -5, 32767, -32768], dtype=torch.int16),
        "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(42.0),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, OUT / "dtypes.safetensors", metadata={"format": "pt", "purpose": "sardine dtype fixture"})


if __name__ == "__main__":
    main()
