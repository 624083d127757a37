"""The `init-model` operation: a diffusers pipeline folder with freshly initialised weights, built as diffusers'
and transformers' `from_config` build each model after `torch.manual_seed(seed)` (so the values are torch's,
not the tfjs engine's: the engine is part of the step's content key). The architecture folder is copied as it
is (configs, scheduler, tokenizers) and each model's weights are added; the folder appears only when complete.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .files import read_json
from .pipeline import TEXT_ENCODER_CLASSES, TEXT_ENCODERS, checkpoint_state

WEIGHT_FILE = re.compile(r"\.(safetensors|bin|ckpt|pt|pth|onnx)$")


def component_class(index: dict[str, Any], name: str) -> str | None:
    entry = index.get(name)
    return entry[1] if isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[1], str) else None


def init_model(request: dict[str, Any], channel: Any) -> dict[str, Any]:
    import transformers
    from diffusers.models import AutoencoderKL, UNet2DConditionModel

    architecture = Path(request["architecture"])
    out = Path(request["out"])
    if out.exists():
        raise ValueError(f"{out}: already exists; init-model writes a new folder")
    index_file = architecture / "model_index.json"
    index = read_json(index_file)
    expected = {"unet": ("UNet2DConditionModel",), "vae": ("AutoencoderKL",)}
    encoders = ["text_encoder", "text_encoder_2"] if request["family"] == "sdxl" else ["text_encoder"]
    for name in encoders:
        expected[name] = TEXT_ENCODER_CLASSES
    for name, classes in expected.items():
        if component_class(index, name) not in classes:
            raise ValueError(f"{index_file}: component {name!r} is {index.get(name)!r}; sardine builds {' or '.join(classes)}")
    extra = [n for n in TEXT_ENCODERS if n not in encoders and component_class(index, n) is not None]
    if extra:
        raise ValueError(f"{index_file}: names {', '.join(extra)}, which a {request['family']!r} base does not have")
    for path in architecture.rglob("*"):
        if path.is_file() and WEIGHT_FILE.search(path.name):
            raise ValueError(f"{path}: an architecture folder holds configs and tokenizer files, not weights; declare a folder with weights as diffusers(path)")

    temporary = out.parent / f".{out.name}.{uuid.uuid4()}.partial"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(architecture, temporary)
        torch.manual_seed(request["seed"])
        models = [
            ("unet", UNet2DConditionModel.from_config(read_json(architecture / "unet" / "config.json")), "diffusion_pytorch_model.safetensors"),
            ("vae", AutoencoderKL.from_config(read_json(architecture / "vae" / "config.json")), "diffusion_pytorch_model.safetensors"),
        ]
        for name in encoders:
            cls = getattr(transformers, component_class(index, name))
            config = cls.config_class.from_pretrained(str(architecture / name))
            models.append((name, cls(config), "model.safetensors"))
        for number, (name, model, file) in enumerate(models):
            channel.check_stop()
            state = checkpoint_state(model)
            save_file(state, str(temporary / name / file), metadata={"format": "pt"})
            channel.progress(number + 1, len(models), "components")
        os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {}
