"""Forward FLOP counts of pipelines' models, from torch.utils.flop_counter.FlopCounterMode, as goldens for the
time plan of `sardine plan --resources` (framework/plan/flop-estimate.ts).

    python tools/make_flop_goldens.py > test/fixtures/flops/forward-flops.json

Each model is built from its folder's config on torch's meta device (no weights are read or allocated, so the
full-size SDXL architecture costs nothing) and run forward once on one sample: the UNet on latents of the
given side with 77 prompt tokens (SDXL: its pooled text embeds and time ids), the VAE's encoder and decoder
apart (an image of the given side in, its latents back out), each text encoder on 77 tokens. Attention runs
on SDPA's math backend, which FlopCounterMode sees as matmuls (the fused CPU kernel has no FLOP formula).
FlopCounterMode counts matrix products and convolutions (2 per multiply-add), not normalisation, softmax,
activations or additions: the estimate counts the same and states the rest as its error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 77

# (name, folder, image side in pixels).
PIPELINES = [
    ("sd1-tiny", "test/fixtures/pipelines/sd1-tiny", 32),
    ("sdxl-tiny", "test/fixtures/pipelines/sdxl-tiny", 64),
    ("sdxl", "experiments/architectures/sdxl", 1024),
]


def counted(run) -> int:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        run()
    return int(counter.get_total_flops())


def pipeline_flops(folder: Path, side: int) -> dict[str, int]:
    meta = torch.device("meta")
    with meta:
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    latent = side // factor
    result: dict[str, int] = {}
    image = torch.zeros(1, vae.config.in_channels, side, side, device=meta)
    latents = torch.zeros(1, vae.config.latent_channels, latent, latent, device=meta)
    result["vae.encoder"] = counted(lambda: vae.encode(image))
    result["vae.decoder"] = counted(lambda: vae.decode(latents))
    widths = []
    for name in ("text_encoder", "text_encoder_2"):
        if not (folder / name).exists():
            continue
        config = CLIPTextConfig.from_pretrained(folder / name)
        cls = CLIPTextModelWithProjection if "CLIPTextModelWithProjection" in (config.architectures or []) else CLIPTextModel
        with meta:
            encoder = cls(config)
        ids = torch.zeros(1, TOKENS, dtype=torch.long, device=meta)
        result[name] = counted(lambda: encoder(ids))
        widths.append(config.hidden_size)
    context = torch.zeros(1, TOKENS, unet.config.cross_attention_dim, device=meta)
    added = None
    if unet.config.addition_embed_type == "text_time":
        pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
        added = {"text_embeds": torch.zeros(1, pooled, device=meta), "time_ids": torch.zeros(1, 6, device=meta)}
    sample = torch.zeros(1, unet.config.in_channels, latent, latent, device=meta)
    timestep = torch.zeros(1, device=meta)
    result["unet"] = counted(lambda: unet(sample, timestep, context, added_cond_kwargs=added))
    return result


def main() -> None:
    goldens = {
        name: {"folder": folder, "resolution": side, "tokens": TOKENS, "forwardFlops": pipeline_flops(ROOT / folder, side)}
        for name, folder, side in PIPELINES
    }
    json.dump({"source": "tools/make_flop_goldens.py (torch.utils.flop_counter.FlopCounterMode, torch " + torch.__version__ + ")",
               "pipelines": goldens}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
