"""The config keys the pinned diffusers / transformers classes read (their constructors' parameters), for
test/models/config-keys.test.ts: every key one of these classes takes must be a field of sardine's schema for
the same config — implemented, or refused unless it has the value sardine computes with — so that no
config value that changes the model or the sampler is silently ignored. Keys a class does not take, both
diffusers and sardine ignore (diffusers with a warning).

Run from the repository root: .venv/bin/python tools/make_config_key_goldens.py
"""

import inspect
import json
from pathlib import Path

import diffusers
import transformers

OUT = Path("test/fixtures/config-keys.json")

CLASSES = {
    "diffusers": [
        "UNet2DConditionModel",
        "AutoencoderKL",
        "ControlNetModel",
        "DDPMScheduler",
        "DDIMScheduler",
        "EulerDiscreteScheduler",
        "EulerAncestralDiscreteScheduler",
        "HeunDiscreteScheduler",
        "DPMSolverMultistepScheduler",
        "UniPCMultistepScheduler",
    ],
    "transformers": ["CLIPTextConfig"],
}


def parameters(cls):
    return [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def own_parameters(module, name):
    # A transformers config also takes PretrainedConfig's generic keys (dtype, architectures, return_dict…),
    # which describe loading and outputs, not the model's computation.
    generic = set(parameters(transformers.PretrainedConfig)) if module is transformers else set()
    return [key for key in parameters(getattr(module, name)) if key not in generic]


def main():
    goldens = {
        "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__},
        "classes": {name: own_parameters(module, name) for module in (diffusers, transformers) for name in CLASSES[module.__name__]},
    }
    OUT.write_text(json.dumps(goldens, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
