"""The `export` operation (format diffusers): a trained model as a complete diffusers pipeline folder, as the
tfjs engine writes it (adapters/tfjs/export/merged-pipeline.ts): LoRA merged into the base weights, fully
trained tensors as trained, a learned token appended to each text encoder's table (vocab_size grows) and added
to each tokenizer, every untouched component copied as it is, a conditioned experiment's trained ControlNet folder
copied as `controlnet/`. Written under a temporary name, then renamed.
(The LoRA and embedding formats are written by the engine from the trained model's files directly.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import save_file

from .adaptation import ADDED_TOKEN_EMBEDDING
from .controlnet import COMPONENT as CONTROLNET
from .files import read_json
from .pipeline import checkpoint_state, encoder_names, load_text_encoders, load_unet, load_vae
from .trained_model import TrainedTensors, apply_to_component

WEIGHT_FILE = re.compile(r"\.(safetensors|bin|ckpt|pt)$|\.safetensors\.index\.json$|\.bin\.index\.json$")
TOKEN_EMBEDDING = "text_model.embeddings.token_embedding.weight"


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def add_tokens_to_tokenizer(folder: Path, spellings: Sequence[str], first_id: int) -> None:
    """The spellings in every form transformers reads: added_tokens.json, tokenizer_config.json's
    added_tokens_decoder and tokenizer.json's added_tokens (when present)."""
    added = [(first_id + i, s) for i, s in enumerate(spellings)]

    def entry(content: str) -> dict[str, Any]:
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False, "special": False}

    legacy_file = folder / "added_tokens.json"
    legacy = read_json(legacy_file) if legacy_file.exists() else {}
    write_json(legacy_file, {**legacy, **{content: i for i, content in added}})
    config_file = folder / "tokenizer_config.json"
    config = read_json(config_file) if config_file.exists() else {}
    decoder = dict(config.get("added_tokens_decoder") or {})
    for i, content in added:
        decoder[str(i)] = entry(content)
    write_json(config_file, {**config, "added_tokens_decoder": decoder})
    fast_file = folder / "tokenizer.json"
    if fast_file.exists():
        fast = read_json(fast_file)
        fast["added_tokens"] = [*(fast.get("added_tokens") or []), *({"id": i, **entry(c)} for i, c in added)]
        write_json(fast_file, fast)


def export_diffusers(request: dict[str, Any], channel: Any) -> dict[str, Any]:
    base = Path(request["base"])
    out = Path(request["out"])
    trained = request["trained"]
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new --out folder")
    tensors = TrainedTensors(trained["dir"], trained["useEma"])
    spellings = trained["spellings"]
    encoders = encoder_names(str(base))
    # A conditioned experiment's ControlNet comes whole from its folder (request["controlnet"]), not from the tensors.
    changed = {n.split(".", 1)[0] for n in tensors.names if not n.endswith(ADDED_TOKEN_EMBEDDING)} - {CONTROLNET}
    if spellings is not None:
        changed.update(encoders)
    temporary = out.parent / f".{out.name}.{uuid.uuid4()}.partial"
    out.parent.mkdir(parents=True, exist_ok=True)

    def ignore(folder: str, names: list[str]) -> list[str]:
        component = Path(folder).resolve().relative_to(base.resolve()).parts[:1]
        return [n for n in names if component and component[0] in changed and WEIGHT_FILE.search(n)]

    try:
        shutil.copytree(base, temporary, ignore=ignore)
        loaded: dict[str, torch.nn.Module] = {}
        if "unet" in changed:
            loaded["unet"] = load_unet(str(base))
        if "vae" in changed:
            loaded["vae"] = load_vae(str(base))
        text_encoders = load_text_encoders(str(base)) if any(n in changed for n in encoders) else []
        for encoder in text_encoders:
            loaded[encoder.name] = encoder.model
        unknown = changed - set(loaded)
        if unknown:
            raise ValueError(f"{trained['dir']}: has tensors for {', '.join(sorted(unknown))}, which the base {base} has not")
        for number, (name, model) in enumerate(loaded.items()):
            channel.check_stop()
            apply_to_component(model, name, tensors, trained["loraScales"].get(name))
            state = checkpoint_state(model)
            if spellings is not None and name in encoders:
                rows = tensors.get(f"{name}.{ADDED_TOKEN_EMBEDDING}")
                state[TOKEN_EMBEDDING] = torch.cat([state[TOKEN_EMBEDDING], rows])
                vocab = model.config.vocab_size
                config_file = temporary / name / "config.json"
                write_json(config_file, {**read_json(config_file), "vocab_size": vocab + len(spellings)})
                add_tokens_to_tokenizer(temporary / name.replace("text_encoder", "tokenizer"), spellings, vocab)
            file = "model.safetensors" if name.startswith("text_encoder") else "diffusion_pytorch_model.safetensors"
            save_file(state, str(temporary / name / file), metadata={"format": "pt"})
            channel.progress(number + 1, len(loaded), "components")
        if request.get("controlnet") is not None:
            shutil.copytree(request["controlnet"], temporary / CONTROLNET)
        os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {}
