"""Measures the peak resident memory one training step of a pipeline's UNet (or VAE) adds on CPU, for checking the
activation estimate of `sardine plan --resources` (framework/plan/activation-estimate.ts).

    python tools/measure_training_memory.py BASE_FOLDER --batch 16 [--checkpointing] [--latent 8] [--vae]

Loads BASE_FOLDER/unet with diffusers (fp32, every parameter trainable, as the torch engine trains a full
UNet), runs one warm-up step at batch 1 (so that gradients, AdamW's moments and torch's own buffers exist),
then one step (forward, MSE loss, backward, AdamW) at the asked batch on seeded inputs, and prints as JSON
the process's peak RSS (getrusage's ru_maxrss) before and after that step: the difference is what the step's
activations at that batch took beyond batch 1's. Run it at two batch sizes, each in its own process (the peak
only grows): the slope is the measured activation memory per sample.
"""

from __future__ import annotations

import argparse
import json
import resource

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel


def peak_rss_bytes() -> int:
    # Linux reports kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--latent", type=int, help="latent side (default: the UNet's sample_size)")
    parser.add_argument("--tokens", type=int, default=77, help="prompt tokens the cross-attention reads")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--vae", action="store_true", help="train the VAE on reconstruction (L1) instead, at --latent pixels")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = AutoencoderKL.from_pretrained(args.base, subfolder="vae") if args.vae else UNet2DConditionModel.from_pretrained(args.base, subfolder="unet")
    model.train()
    if args.checkpointing:
        model.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    config = model.config
    side = args.latent or config.sample_size

    def step(batch: int) -> None:
        if args.vae:
            images = torch.rand(batch, config.in_channels, side, side) * 2 - 1
            loss = torch.nn.functional.l1_loss(model(images, sample_posterior=True).sample, images)
        else:
            latents = torch.randn(batch, config.in_channels, side, side)
            context = torch.randn(batch, args.tokens, config.cross_attention_dim)
            timesteps = torch.randint(0, 1000, (batch,))
            prediction = model(latents, timesteps, encoder_hidden_states=context).sample
            loss = torch.nn.functional.mse_loss(prediction, torch.randn_like(prediction))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)

    step(1)
    before = peak_rss_bytes()
    step(args.batch)
    after = peak_rss_bytes()
    parameters = sum(p.numel() for p in model.parameters())
    print(json.dumps({"batch": args.batch, "latent": side, "checkpointing": args.checkpointing, "parameters": parameters,
                      "peakRssBefore": before, "peakRssAfter": after}))


if __name__ == "__main__":
    main()
