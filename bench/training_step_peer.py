"""Peer of bench/training-step.ts: one full-UNet training step of the tiny SDXL-like fixture in PyTorch.

Same work as sardine's cached-input step: UNet forward on a batch of 2 noisy 8×8 latents with cached text
conditioning, MSE against the noise, backward, AdamW. Prints the median milliseconds per step, with torch on
1 and on 2 threads, as JSON.

Run from the repository root: .venv/bin/python bench/training_step_peer.py [steps]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch
from diffusers import UNet2DConditionModel

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 12


def median_step_ms(threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained("test/fixtures/pipelines/sdxl-tiny/unet").train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    times = []
    for step in range(STEPS + 2):
        latents = torch.randn(2, 4, 8, 8)
        noise = torch.randn(2, 4, 8, 8)
        timesteps = torch.randint(0, 1000, (2,))
        context = torch.randn(2, 77, 24)
        added = dict(text_embeds=torch.randn(2, 12), time_ids=torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0]] * 2))
        start = time.perf_counter()
        prediction = unet(latents + noise, timesteps, encoder_hidden_states=context, added_cond_kwargs=added).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= 2:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


print(json.dumps({"torch-1-thread": median_step_ms(1), "torch-2-threads": median_step_ms(2)}))
