"""The config keys the pinned diffusers / transformers classes read (their constructors' parameters), for
test/models/config-keys.test.ts: every key one of these classes takes must be a field of sardine's schema for
the same config — implemented, or refused unless it has the value sardine computes with — so that no
config value that changes the model or the sampler is silently ignored. And the keys each library itself
ignores or handles outside the model (`ignored`), which the tfjs engine lets pass unnamed; any other key
(a newer version's option, which the pinned one would ignore with a warning) the tfjs engine refuses
(adapters/tfjs/config-refusals.ts, whose list must equal these).

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


# Keys transformers 4's CLIPTextConfig took that no CLIP layer ever read; configs on the Hub still carry them
# (SD 1.x / 2.x and SDXL text encoders: "dropout": 0.0), and the pinned transformers keeps them as plain attributes.
LEGACY_TRANSFORMERS_KEYS = ["dropout"]


def diffusers_ignored(name):
    # ConfigMixin.extract_init_dict drops, without a warning, the keys of the class's compatible classes (the other
    # schedulers a scheduler config may have been saved by) that the class does not take, and private keys.
    cls = getattr(diffusers, name)
    own = set(parameters(cls))
    compatible = cls._get_compatibles() if getattr(cls, "has_compatibles", False) else []
    return sorted({key for c in compatible for key in parameters(c)} - own)


def transformers_ignored(name):
    # PretrainedConfig's generic keys (loading, outputs, labels), the ones its to_dict writes beside them, and
    # `torch_dtype`, which the pinned version reads as `dtype`.
    written = set(transformers.PretrainedConfig().to_dict())
    generic = set(parameters(transformers.PretrainedConfig)) | written | {"torch_dtype"}
    own = set(own_parameters(transformers, name))
    return sorted(key for key in generic | set(LEGACY_TRANSFORMERS_KEYS) if not key.startswith("_") and key not in own)


def main():
    goldens = {
        "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__},
        "classes": {name: own_parameters(module, name) for module in (diffusers, transformers) for name in CLASSES[module.__name__]},
        "ignored": {
            **{name: diffusers_ignored(name) for name in CLASSES["diffusers"]},
            **{name: transformers_ignored(name) for name in CLASSES["transformers"]},
        },
    }
    OUT.write_text(json.dumps(goldens, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
