"""PyTorch peer of bench/train.ts: full training steps of issue 7's tiny UNet2DConditionModel with diffusers.

Builds the random-weight pipeline folder both sides train (bench/sampling_peer.py's: UNet with
block_out_channels (32, 64), two layers per block, cross-attention dim 32, 32 x 32 latents), then times what
sardine's cached-input training step does: noisy latents at random timesteps, UNet forward with the text
conditioning, MSE against the noise, backward, AdamW (lr 1e-4, weight decay 1e-2), on `batch` images, with
torch on 2 threads (the peer of record) and on 1 thread (sardine's wasm backend runs on one).

Usage (run by bench/train.ts): .venv/bin/python bench/train_peer.py <folder> <steps> <batch>
Prints one JSON object: {"msPerStep": {"2": [...], "1": [...]}} (by thread count, the steps after two warm-up steps).
"""

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_peer import build  # noqa: E402

WARM_UP = 2


def step_times(folder: Path, steps: int, batch: int, threads: int) -> list[float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").train()
    schedule = DDPMScheduler.from_pretrained(folder / "scheduler")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(WARM_UP + steps):
        latents = torch.randn(batch, 4, 32, 32, generator=generator)
        noise = torch.randn(batch, 4, 32, 32, generator=generator)
        timesteps = torch.randint(0, schedule.config.num_train_timesteps, (batch,), generator=generator)
        context = torch.randn(batch, 77, 32, generator=generator)
        start = time.perf_counter()
        prediction = unet(schedule.add_noise(latents, noise, timesteps), timesteps, encoder_hidden_states=context).sample
        loss = F.mse_loss(prediction, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= WARM_UP:
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    folder, steps, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    build(folder)
    print(json.dumps({"msPerStep": {str(t): step_times(folder, steps, batch, t) for t in (2, 1)}}))


if __name__ == "__main__":
    main()
