"""Tiny diffusers ControlNets and what diffusers computes with them, for sardine's ControlNet parity tests.

Writes, under test/fixtures/controlnet/:
  sd1-controlnet/      ControlNetModel.from_unet(sd1-tiny's UNet, conditioning_embedding_out_channels=(4, 8):
                       the embedding halves the image as sd1-tiny's VAE does), then every weight randomised so
                       the zero convolutions are not zero and a mis-wired parameter changes the residuals
  sdxl-unet/           a tiny SDXL-like UNet (text_time, linear projections, 2 layers per block): ControlNetModel
                       takes one layers_per_block for all blocks, which sdxl-tiny's UNet (1, 2, 1) does not give
  sdxl-controlnet/     from_unet of it (conditioning_embedding_out_channels=(4, 8, 8): a factor 4), randomised
  sd1.reference.safetensors, sdxl.reference.safetensors
                       fixed inputs; the ControlNet's residuals at conditioning scale 1 and at 0.6 in guess mode;
                       the UNet's noise prediction with the scale-1 residuals added; the state dict from_unet
                       gives before randomising (`from_unet.<name>`), except the conditioning embedding's
                       conv_in and blocks, which torch draws at random
  sd1-from-unet.json, sdxl-from-unet.json
                       the config.json from_unet writes, as the reference for sardine's from_unet config

The SD-1 fixture is sd1-tiny's own UNet (test/fixtures/pipelines, made by tools/make_tiny_pipelines.py, run
that first); the residuals are fed to it. Weights are randomised as make_tiny_pipelines.py does and stored as
float32.

Run from the repository root: .venv/bin/python tools/make_controlnet_goldens.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from make_tiny_pipelines import randomise
from safetensors.torch import save_file

PIPELINES = Path("test/fixtures/pipelines")
OUT = Path("test/fixtures/controlnet")


def config_of(model: ControlNetModel, directory: Path) -> dict:
    """The config.json save_pretrained writes for `model` (through a scratch folder)."""
    scratch = directory.with_name(directory.name + ".config")
    model.save_config(scratch)
    config = json.loads((scratch / "config.json").read_text())
    shutil.rmtree(scratch)
    return config


def from_unet_reference(controlnet: ControlNetModel, out: dict[str, torch.Tensor]) -> None:
    """What from_unet sets deterministically: the UNet's copies and the zero convolutions."""
    for name, value in controlnet.state_dict().items():
        drawn = name.startswith("controlnet_cond_embedding.conv_in") or name.startswith("controlnet_cond_embedding.blocks")
        if not drawn:
            out[f"from_unet.{name}"] = value.clone()


def residuals(controlnet: ControlNetModel, inputs: dict, scale: float, guess_mode: bool, prefix: str, out: dict[str, torch.Tensor]):
    with torch.no_grad():
        result = controlnet(**inputs, conditioning_scale=scale, guess_mode=guess_mode)
    for i, r in enumerate(result.down_block_res_samples):
        out[f"{prefix}.down.{i}"] = r
    out[f"{prefix}.mid"] = result.mid_block_res_sample
    return result


def fixture(name: str, unet: UNet2DConditionModel, embedding_channels: tuple[int, ...], inputs: dict, seed: int) -> None:
    out: dict[str, torch.Tensor] = {}
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=embedding_channels, conditioning_channels=3)
    (OUT / f"{name}-from-unet.json").write_text(json.dumps(config_of(controlnet, OUT / name), indent=2, sort_keys=True) + "\n")
    from_unet_reference(controlnet, out)
    randomise(controlnet, seed)
    controlnet.save_pretrained(OUT / f"{name}-controlnet", safe_serialization=True)

    for key, value in inputs.items():
        if key != "added_cond_kwargs":
            out[f"input.{key}"] = value.to(torch.int32) if key == "timestep" else value
    for key, value in inputs.get("added_cond_kwargs", {}).items():
        out[f"input.{key}"] = value
    plain = residuals(controlnet, inputs, 1.0, False, "scale1", out)
    residuals(controlnet, inputs, 0.6, True, "guess06", out)
    unet_inputs = {k: v for k, v in inputs.items() if k != "controlnet_cond"}
    with torch.no_grad():
        out["unet.output"] = unet(
            **unet_inputs,
            down_block_additional_residuals=plain.down_block_res_samples,
            mid_block_additional_residual=plain.mid_block_res_sample,
        ).sample
        out["unet.output_without_residuals"] = unet(**unet_inputs).sample
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / f"{name}.reference.safetensors")


def sd1() -> None:
    unet = UNet2DConditionModel.from_pretrained(PIPELINES / "sd1-tiny" / "unet").float()
    g = torch.Generator().manual_seed(31)
    inputs = {
        "sample": torch.randn(2, 4, 8, 12, generator=g),
        "timestep": torch.tensor([999, 37], dtype=torch.int64),
        "encoder_hidden_states": torch.randn(2, 77, 16, generator=g),
        # An image twice the latent size, values in [0, 1] as the pipelines' control image processor gives.
        "controlnet_cond": torch.rand(2, 3, 16, 24, generator=g),
    }
    fixture("sd1", unet, (4, 8), inputs, 300)


def sdxl() -> None:
    addition_time_embed_dim = 4
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(4, 8, 8),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(1, 1, 2),
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        cross_attention_dim=24,
        addition_embed_type="text_time",
        addition_time_embed_dim=addition_time_embed_dim,
        projection_class_embeddings_input_dim=6 * addition_time_embed_dim + 12,
        norm_num_groups=2,
    )
    randomise(unet, 400)
    unet.save_pretrained(OUT / "sdxl-unet", safe_serialization=True)
    g = torch.Generator().manual_seed(41)
    inputs = {
        "sample": torch.randn(2, 4, 8, 8, generator=g),
        "timestep": torch.tensor([500, 1], dtype=torch.int64),
        "encoder_hidden_states": torch.randn(2, 77, 24, generator=g),
        "controlnet_cond": torch.rand(2, 3, 32, 32, generator=g),
        "added_cond_kwargs": {
            "text_embeds": torch.randn(2, 12, generator=g),
            "time_ids": torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0], [1024.0, 768.0, 16.0, 32.0, 512.0, 512.0]]),
        },
    }
    fixture("sdxl", unet, (4, 8, 8), inputs, 500)


def main() -> None:
    torch.manual_seed(0)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    sd1()
    sdxl()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"fixtures written: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
