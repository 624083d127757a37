"""The `export-onnx` operation: a pipeline's UNet, VAE decoder and text encoder as ONNX graphs (fp32, dynamic batch),
with the tokenizer files, the scheduler config and a manifest (`sardine-onnx.json`) naming each graph and its inputs
and outputs, for `sardine generate --engine onnx` (onnxruntime-node) and any onnxruntime. From a trained model, the
merged diffusers pipeline is written first (export.py) and exported from. The layout and names are those of
optimum's Stable Diffusion ONNX export (`unet/model.onnx` with sample, timestep, encoder_hidden_states → out_sample;
`vae_decoder/model.onnx` latent_sample → sample; `text_encoder/model.onnx` input_ids → last_hidden_state,
pooler_output). Written under a temporary name, then renamed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .export import export_diffusers, write_json
from .files import read_json
from .pipeline import encoder_names, load_text_encoders, load_unet, load_vae

MANIFEST = "sardine-onnx.json"
BATCH = "batch"


class UnetGraph(nn.Module):
    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class VaeDecoderGraph(nn.Module):
    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent_sample, return_dict=False)[0]


class TextEncoderGraph(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids, return_dict=False)
        return out[0], out[1]


def export_graph(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    file: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
    opset: int,
) -> dict[str, Any]:
    file.parent.mkdir(parents=True, exist_ok=True)
    # The TorchScript exporter traces diffusers' and transformers' models as they run; the branches it fixes
    # (on batch size ≥ 64 and on tensor sizes over 2³¹) hold for what sardine feeds. A graph over 2 GB is
    # written with its weights as external data next to it, which onnxruntime reads from the folder.
    with torch.no_grad():
        torch.onnx.export(module.eval(), args, str(file), input_names=inputs, output_names=outputs, dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return {"inputs": inputs, "outputs": outputs}


def export_onnx(request: dict[str, Any], channel: Any) -> dict[str, Any]:
    base = Path(request["base"])
    out = Path(request["out"])
    opset = int(request["opset"])
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new --out folder")
    index = read_json(base / "model_index.json")
    encoders = encoder_names(str(base))
    if encoders != ["text_encoder"]:
        raise ValueError(f"{base}: --format onnx exports SD 1.x / 2.x pipelines (one text encoder); this one has {', '.join(encoders)} (SDXL is not carried)")
    temporary = out.parent / f".{out.name}.{uuid.uuid4()}.partial"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        temporary.mkdir()
        source = base
        if request.get("trained") is not None:
            source = temporary / ".merged-pipeline"
            export_diffusers({"base": str(base), "out": str(source), "trained": request["trained"]}, channel)
        unet = load_unet(str(source))
        vae = load_vae(str(source))
        (encoder,) = load_text_encoders(str(source))
        tokens = encoder.tokenizer.model_max_length
        latent = unet.config.in_channels
        size = unet.config.sample_size
        hidden = encoder.model.config.hidden_size
        graphs: dict[str, Any] = {}
        channel.check_stop()
        graphs["unet"] = export_graph(
            UnetGraph(unet),
            (torch.randn(2, latent, size, size), torch.tensor([999.0]), torch.randn(2, tokens, hidden)),
            temporary / "unet" / "model.onnx",
            ["sample", "timestep", "encoder_hidden_states"],
            ["out_sample"],
            {"sample": {0: BATCH, 2: "height", 3: "width"}, "encoder_hidden_states": {0: BATCH}, "out_sample": {0: BATCH, 2: "height", 3: "width"}},
            opset,
        )
        channel.progress(1, 3, "graphs")
        channel.check_stop()
        graphs["vae_decoder"] = export_graph(
            VaeDecoderGraph(vae),
            (torch.randn(1, vae.config.latent_channels, size, size),),
            temporary / "vae_decoder" / "model.onnx",
            ["latent_sample"],
            ["sample"],
            {"latent_sample": {0: BATCH, 2: "latent_height", 3: "latent_width"}, "sample": {0: BATCH, 2: "height", 3: "width"}},
            opset,
        )
        channel.progress(2, 3, "graphs")
        channel.check_stop()
        graphs["text_encoder"] = export_graph(
            TextEncoderGraph(encoder.model),
            (torch.zeros(1, tokens, dtype=torch.int64),),
            temporary / "text_encoder" / "model.onnx",
            ["input_ids"],
            ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: BATCH}, "last_hidden_state": {0: BATCH}, "pooler_output": {0: BATCH}},
            opset,
        )
        channel.progress(3, 3, "graphs")
        for name, folder in [("unet", "unet"), ("vae_decoder", "vae"), ("text_encoder", "text_encoder")]:
            shutil.copyfile(source / folder / "config.json", temporary / name / "config.json")
        shutil.copytree(source / "tokenizer", temporary / "tokenizer")
        shutil.copytree(source / "scheduler", temporary / "scheduler")
        write_json(temporary / MANIFEST, {
            "format": "sardine-onnx-pipeline",
            "version": 1,
            "family": "sd",
            "pipeline": index.get("_class_name"),
            "opset": opset,
            "precision": "float32",
            "torch": torch.__version__,
            "graphs": {name: {"file": f"{name}/model.onnx", **graph} for name, graph in graphs.items()},
            "tokenizer": "tokenizer",
            "scheduler": "scheduler/scheduler_config.json",
            "latentChannels": latent,
            "sampleSize": size,
            "vaeScaleFactor": 2 ** (len(vae.config.block_out_channels) - 1),
            "scalingFactor": vae.config.scaling_factor,
            "tokens": tokens,
        })
        shutil.rmtree(temporary / ".merged-pipeline", ignore_errors=True)
        os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {"graphs": sorted(graphs), "opset": opset}

