"""diffusers peer for bench/load-unet.ts: loads the same unet/ folder with UNet2DConditionModel.from_pretrained.

safetensors memory-maps the file, so from_pretrained returns before most weights are read; the second
measurement adds one pass over every weight (what the first forward pass would pay), which is what
sardine's load does up front.
Prints one JSON object per measurement: label, seconds, peak RSS (MB), parameter count.
Run by bench/load-unet.ts; alone: .venv/bin/python bench/load_unet_peer.py <unet-folder>
"""

import json
import resource
import sys
import time

import torch
from diffusers import UNet2DConditionModel


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    unet = UNet2DConditionModel.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
    loaded = time.perf_counter() - start
    parameters = sum(p.numel() for p in unet.parameters())
    print(json.dumps({"label": "diffusers from_pretrained (mmap)", "seconds": loaded, "peakRssMb": peak_rss_mb(), "parameters": parameters}))
    with torch.no_grad():
        for p in unet.parameters():
            p.sum()
    touched = time.perf_counter() - start
    print(json.dumps({"label": "diffusers + reading every weight", "seconds": touched, "peakRssMb": peak_rss_mb(), "parameters": parameters}))


if __name__ == "__main__":
    main()
