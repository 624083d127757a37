"""Reference statistics of freshly initialised pipelines, for sardine's init-model (adapters/tfjs/init/).

Writes, under test/fixtures/demo-base/:
  init-sd/     an SD-1.x-like architecture folder (model_index.json, unet/vae/text_encoder configs, scheduler,
               tokenizer), configs as diffusers / transformers save them, no weights
  init-sdxl/   an SDXL-like one (linear projections, text_time embedding, CLIPTextModel + CLIPTextModelWithProjection)
  init-statistics.json
               per architecture, component and parameter: shape, and the mean, standard deviation, excess
               kurtosis and largest |value| of the values diffusers' / transformers' `from_config` initialisation
               draws, pooled over SEEDS seeds so the numbers are those of the distribution, not of one draw

Sizes are moderate (tens of thousands of values in the larger tensors) so that one sardine draw can be told
apart from a wrong distribution (a normal instead of a uniform shows in the kurtosis, a wrong fan-in in the std).

Run from the repository root: .venv/bin/python tools/make_init_statistics.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

OUT = Path("test/fixtures/demo-base")
TOKENIZER = Path("test/fixtures/pipelines/sd1-tiny/tokenizer")
SEEDS = 16


def unet_sd() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,
        cross_attention_dim=48,
        norm_num_groups=8,
    )


def unet_sdxl() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        cross_attention_dim=64,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
        norm_num_groups=8,
    )


def vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )


def text_config(vocab: int, hidden: int, layers: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=1,
    )


def architectures(vocab: int) -> dict[str, dict[str, object]]:
    """Each architecture's components as constructors (called once per seed)."""
    return {
        "init-sd": {
            "unet": unet_sd,
            "vae": vae,
            "text_encoder": lambda: CLIPTextModel(text_config(vocab, 48, 3)),
        },
        "init-sdxl": {
            "unet": unet_sdxl,
            "vae": vae,
            "text_encoder": lambda: CLIPTextModel(text_config(vocab, 32, 2)),
            "text_encoder_2": lambda: CLIPTextModelWithProjection(text_config(vocab, 32, 2)),
        },
    }


def canonical(component: str, name: str) -> str:
    """Parameter names as published checkpoints (and sardine) spell them: CLIPTextModel's carry `text_model.`."""
    if component.startswith("text_encoder") and not name.startswith(("text_model.", "text_projection.")):
        return f"text_model.{name}"
    return name


def statistics(build) -> dict[str, dict[str, object]]:
    pooled: dict[str, list[torch.Tensor]] = {}
    for seed in range(SEEDS):
        torch.manual_seed(seed)
        model = build()
        for name, p in model.named_parameters():
            pooled.setdefault(name, []).append(p.detach().double().flatten())
    out: dict[str, dict[str, object]] = {}
    shapes = dict((n, list(p.shape)) for n, p in build().named_parameters())
    for name, parts in pooled.items():
        values = torch.cat(parts)
        mean = values.mean()
        centred = values - mean
        variance = (centred**2).mean()
        kurtosis = ((centred**4).mean() / variance**2 - 3).item() if variance > 0 else 0.0
        out[name] = {
            "shape": shapes[name],
            "mean": round(mean.item(), 7),
            "std": round(variance.sqrt().item(), 7),
            "kurtosis": round(kurtosis, 4),
            "absMax": round(values.abs().max().item(), 7),
        }
    return out


def write_architecture(directory: Path, components: dict[str, object], tokenizer: CLIPTokenizer) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    index = {
        "_class_name": "StableDiffusionXLPipeline" if "text_encoder_2" in components else "StableDiffusionPipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "DDPMScheduler"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    for name, build in components.items():
        model = build()
        if name.startswith("text_encoder"):
            model.config.save_pretrained(directory / name)
            index[name] = ["transformers", type(model).__name__]
            tokenizer_dir = directory / name.replace("text_encoder", "tokenizer")
            # transformers 5 saves tokenizer.json only; the classic files are what published checkpoints carry.
            tokenizer_dir.mkdir(parents=True)
            for file in TOKENIZER.iterdir():
                shutil.copy(file, tokenizer_dir / file.name)
            index[name.replace("text_encoder", "tokenizer")] = ["transformers", "CLIPTokenizer"]
        else:
            model.save_config(directory / name)
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_config(directory / "scheduler")
    (directory / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def main() -> None:
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER)
    vocab = len(tokenizer)
    result: dict[str, object] = {"seeds": SEEDS}
    for architecture, components in architectures(vocab).items():
        write_architecture(OUT / architecture, components, tokenizer)
        result[architecture] = {
            component: {canonical(component, n): s for n, s in statistics(build).items()}
            for component, build in components.items()
        }
    (OUT / "init-statistics.json").write_text(json.dumps(result, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
