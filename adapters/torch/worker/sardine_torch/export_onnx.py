"""The `export-onnx` operation: a pipeline's UNet, VAE decoder and text encoder(s) as ONNX graphs (fp32, dynamic batch),
with the tokenizer files, the scheduler config, model_index.json and a manifest (`sardine-onnx.json`) naming each graph
and its inputs and outputs, for `sardine generate --engine onnx` (onnxruntime-node) and any onnxruntime. From a trained
model, the merged diffusers pipeline is written first (export.py) and exported from. The layout and names are those of
optimum's Stable Diffusion (XL) ONNX export: `unet/model.onnx` with sample, timestep, encoder_hidden_states (SDXL also
text_embeds, time_ids) → out_sample; `vae_decoder/model.onnx` latent_sample → sample; `text_encoder/model.onnx`
input_ids → last_hidden_state, pooler_output; for SDXL, whose pipeline reads a penultimate hidden state, every layer's
`hidden_states.{i}` as optimum writes them, and `text_encoder_2/model.onnx` → text_embeds (the pooled projection),
last_hidden_state, hidden_states.{i}. Written under a temporary name, then renamed.
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


class SdxlUnetGraph(nn.Module):
    """SDXL's UNet with its added conditions (StableDiffusionXLPipeline's added_cond_kwargs) as graph inputs."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor, text_embeds: torch.Tensor, time_ids: torch.Tensor) -> torch.Tensor:
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


class VaeDecoderGraph(nn.Module):
    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent_sample, return_dict=False)[0]


class TextEncoderGraph(nn.Module):
    """(last_hidden_state, pooler_output) of a CLIPTextModel, or (text_embeds, last_hidden_state) of a
    CLIPTextModelWithProjection; with `hidden_states`, then every layer's hidden state (embeddings first)."""

    def __init__(self, encoder: nn.Module, hidden_states: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.hidden_states = hidden_states

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.encoder(input_ids, output_hidden_states=self.hidden_states, return_dict=True)
        first = (out.text_embeds, out.last_hidden_state) if hasattr(out, "text_embeds") else (out.last_hidden_state, out.pooler_output)
        return (*first, *out.hidden_states) if self.hidden_states else first


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


def export_text_encoder(encoder: Any, temporary: Path, sdxl: bool, opset: int) -> dict[str, Any]:
    """A text encoder's graph; its manifest entry lists first the outputs sardine reads: SD 1.x / 2.x the last hidden
    state; SDXL the penultimate hidden state (StableDiffusionXLPipeline.encode_prompt's hidden_states[-2]) and, from
    the encoder with projection, text_embeds; then the graph's other outputs."""
    model = encoder.model
    layers = model.config.num_hidden_layers
    projected = hasattr(model, "text_projection")
    first = ["text_embeds", "last_hidden_state"] if projected else ["last_hidden_state", "pooler_output"]
    outputs = first + ([f"hidden_states.{i}" for i in range(layers + 1)] if sdxl else [])
    graph = export_graph(
        TextEncoderGraph(model, sdxl),
        (torch.zeros(1, encoder.tokenizer.model_max_length, dtype=torch.int64),),
        temporary / encoder.name / "model.onnx",
        ["input_ids"],
        outputs,
        {name: {0: BATCH} for name in ["input_ids", *outputs]},
        opset,
    )
    read = ([f"hidden_states.{layers - 1}"] + (["text_embeds"] if projected else [])) if sdxl else ["last_hidden_state"]
    return {**graph, "outputs": read + [name for name in outputs if name not in read]}


def export_onnx(request: dict[str, Any], channel: Any) -> dict[str, Any]:
    base = Path(request["base"])
    out = Path(request["out"])
    opset = int(request["opset"])
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new --out folder")
    index = read_json(base / "model_index.json")
    encoders = encoder_names(str(base))
    sdxl = encoders == ["text_encoder", "text_encoder_2"]
    if encoders != ["text_encoder"] and not sdxl:
        raise ValueError(f"{base}: --format onnx exports SD 1.x / 2.x (text_encoder) and SDXL (text_encoder, text_encoder_2) pipelines; this one has {', '.join(encoders)}")
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
        text_encoders = load_text_encoders(str(source))
        tokens = text_encoders[0].tokenizer.model_max_length
        latent = unet.config.in_channels
        size = unet.config.sample_size
        hidden = sum(e.model.config.hidden_size for e in text_encoders)
        total = 2 + len(text_encoders)
        graphs: dict[str, Any] = {}
        channel.check_stop()
        unet_args = (torch.randn(2, latent, size, size), torch.tensor([999.0]), torch.randn(2, tokens, hidden))
        unet_inputs = ["sample", "timestep", "encoder_hidden_states"]
        unet_axes = {"sample": {0: BATCH, 2: "height", 3: "width"}, "encoder_hidden_states": {0: BATCH}, "out_sample": {0: BATCH, 2: "height", 3: "width"}}
        if sdxl:
            pooled = text_encoders[1].model.config.projection_dim
            unet_args = (*unet_args, torch.randn(2, pooled), torch.tensor([[8.0 * size, 8.0 * size, 0.0, 0.0, 8.0 * size, 8.0 * size]] * 2))
            unet_inputs = [*unet_inputs, "text_embeds", "time_ids"]
            unet_axes = {**unet_axes, "text_embeds": {0: BATCH}, "time_ids": {0: BATCH}}
        graphs["unet"] = export_graph(
            SdxlUnetGraph(unet) if sdxl else UnetGraph(unet), unet_args, temporary / "unet" / "model.onnx", unet_inputs, ["out_sample"], unet_axes, opset
        )
        channel.progress(1, total, "graphs")
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
        channel.progress(2, total, "graphs")
        for done, encoder in enumerate(text_encoders, start=3):
            channel.check_stop()
            graphs[encoder.name] = export_text_encoder(encoder, temporary, sdxl, opset)
            channel.progress(done, total, "graphs")
        for name, folder in [("unet", "unet"), ("vae_decoder", "vae"), *((e.name, e.name) for e in text_encoders)]:
            shutil.copyfile(source / folder / "config.json", temporary / name / "config.json")
        tokenizers = [e.name.replace("text_encoder", "tokenizer") for e in text_encoders]
        for tokenizer in tokenizers:
            shutil.copytree(source / tokenizer, temporary / tokenizer)
        shutil.copytree(source / "scheduler", temporary / "scheduler")
        # optimum's ORT pipelines read the pipeline class and options from it.
        shutil.copyfile(source / "model_index.json", temporary / "model_index.json")
        family: dict[str, Any] = {"family": "sd"}
        if sdxl:
            # diffusers' StableDiffusionXLPipeline registers force_zeros_for_empty_prompt=True unless the folder says otherwise.
            family = {"family": "sdxl", "tokenizer_2": tokenizers[1], "forceZerosForEmptyPrompt": index.get("force_zeros_for_empty_prompt", True) is not False}
        write_json(temporary / MANIFEST, {
            "format": "sardine-onnx-pipeline",
            "version": 1,
            **family,
            "pipeline": index.get("_class_name"),
            "opset": opset,
            "precision": "float32",
            "torch": torch.__version__,
            "graphs": {name: {"file": f"{name}/model.onnx", **graph} for name, graph in graphs.items()},
            "tokenizer": tokenizers[0],
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
