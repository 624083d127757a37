"""The config keys the pinned diffusers / transformers classes read (their constructors' parameters), for
test/models/config-keys.test.ts: every key one of these classes takes must be a field of sardine's schema for
the same config — implemented, or refused unless it has the value sardine computes with — so that no
config value that changes the model or the sampler is silently ignored. And the keys each library itself
ignores or handles outside the model (`ignored`), which the tfjs engine lets pass unnamed; any other key
(a newer version's option, which the pinned one would ignore with a warning) the tfjs engine refuses
(adapters/tfjs/config-refusals.ts for a pipeline, clip-model.ts for a CLIPModel folder; unknown-config-keys.ts, whose
lists must equal these).

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
    # The text encoders of a pipeline; a CLIPModel folder's config (the scorer's, the CLIP trainer's) and its two towers.
    "transformers": ["CLIPTextConfig", "CLIPVisionConfig", "CLIPConfig"],
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


# Keys transformers 4 wrote that no CLIP layer ever read; configs on the Hub still carry them, and the pinned
# transformers keeps them as plain attributes: its CLIP configs' `dropout` (SD 1.x / 2.x and SDXL text encoders:
# "dropout": 0.0), and its PretrainedConfig's generic keys, which configs saved whole carry in each tower
# (openai/clip-vit-base-patch32: "is_decoder", "pruned_heads", "tie_word_embeddings", … beside the generation
# parameters, which the pinned GenerationConfig lists).
LEGACY_TRANSFORMERS_KEYS = [
    "dropout",
    "add_cross_attention",
    "cross_attention_hidden_size",
    "decoder_start_token_id",
    "finetuning_task",
    "is_decoder",
    "prefix",
    "pruned_heads",
    "sep_token_id",
    "task_specific_params",
    "tie_encoder_decoder",
    "tie_word_embeddings",
    "tokenizer_class",
    "torchscript",
    "use_bfloat16",
]


def diffusers_ignored(name):
    # ConfigMixin.extract_init_dict drops, without a warning, the keys of the class's compatible classes (the other
    # schedulers a scheduler config may have been saved by) that the class does not take, and private keys.
    cls = getattr(diffusers, name)
    own = set(parameters(cls))
    compatible = cls._get_compatibles() if getattr(cls, "has_compatibles", False) else []
    return sorted({key for c in compatible for key in parameters(c)} - own)


def transformers_ignored(name):
    # PretrainedConfig's generic keys (loading, outputs, labels), the ones its to_dict writes beside them,
    # `torch_dtype`, which the pinned version reads as `dtype`, and the generation parameters older configs
    # carry (read by `generate`, never by a CLIP model).
    written = set(transformers.PretrainedConfig().to_dict())
    generation = set(transformers.GenerationConfig._get_default_generation_params())
    generic = set(parameters(transformers.PretrainedConfig)) | written | generation | {"torch_dtype"}
    own = set(own_parameters(transformers, name))
    return sorted(key for key in generic | set(LEGACY_TRANSFORMERS_KEYS) if not key.startswith("_") and key not in own)


def scheduler_classes():
    # Every scheduler class of the pinned diffusers, with the keys it takes: ConfigMixin.extract_init_dict drops,
    # without a warning, the keys of the class a config names (`_class_name`) that the loading class does not take.
    found = {}
    for name in sorted(dir(diffusers)):
        cls = getattr(diffusers, name, None)
        if name.endswith("Scheduler") and inspect.isclass(cls) and issubclass(cls, diffusers.SchedulerMixin) and hasattr(cls, "config_name"):
            found[name] = sorted(parameters(cls))
    return found


def main():
    goldens = {
        "versions": {"diffusers": diffusers.__version__, "transformers": transformers.__version__},
        "classes": {name: own_parameters(module, name) for module in (diffusers, transformers) for name in CLASSES[module.__name__]},
        "ignored": {
            **{name: diffusers_ignored(name) for name in CLASSES["diffusers"]},
            **{name: transformers_ignored(name) for name in CLASSES["transformers"]},
        },
        "schedulers": scheduler_classes(),
    }
    OUT.write_text(json.dumps(goldens, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
