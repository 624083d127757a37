"""A tiny transformers CLIPModel (image + text towers, projections, logit scale) with reference outputs.

Run from the repository root:  .venv/bin/python tools/make_clip_model_goldens.py

Writes test/fixtures/clip-model/:
  tiny-clip/             the model as transformers saves it (config.json, model.safetensors), its CLIP BPE
                         tokenizer (vocab.json, merges.txt, tokenizer_config.json: 16 positions) and
                         CLIPImageProcessor's preprocessor_config.json (16 x 16, OpenAI mean / std)
  tiny-clip-onnx/        the same model exported to ONNX the way docs/sar-clip.md says (get_image_features /
                         get_text_features -> pooler_output), with the same tokenizer and preprocessor files
  reference.safetensors  float64 torch results on sardine's preprocessing of the images of reference.json:
                           pixel_values [4, 3, 16, 16], input_ids [4, 16] (int32),
                           image_embeds / text_embeds (projected, not normalised), logits_per_image, loss
                           (CLIPModel(return_loss=True)), grad.<name> (d loss / d parameter, torch layout),
                           and a soft-target case: soft.image / soft.text unit embeddings, soft.scale,
                           soft.loss = symmetric cross-entropy against targets spread over equal captions
                           (torch's cross_entropy with probability targets; captions soft.groups)
  reference.json         the raw images and texts, and `init`: how transformers' CLIPModel(config)
                         initialises each parameter (normal with its std, or a constant), recorded from the
                         init calls transformers makes (config: init-config.json)
Weights come from seeded torch generators; a rerun rewrites the same files.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
from transformers import initialization as hf_init

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tiny_clip_onnx import MEAN, STD, b64, byte_characters, export, learn_merges, preprocess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "clip-model"
MODEL = OUT / "tiny-clip"
ONNX = OUT / "tiny-clip-onnx"
CONTEXT = 16
IMAGE_SIZE = 16  # make_tiny_clip_onnx.preprocess resizes to this size too
GRADIENTS = [
    "logit_scale",
    "visual_projection.weight",
    "text_projection.weight",
    "vision_model.embeddings.patch_embedding.weight",
    "vision_model.embeddings.class_embedding",
    "vision_model.embeddings.position_embedding.weight",
    "vision_model.pre_layrnorm.weight",
    "vision_model.encoder.layers.0.self_attn.q_proj.weight",
    "vision_model.post_layernorm.bias",
    "text_model.embeddings.token_embedding.weight",
    "text_model.encoder.layers.1.mlp.fc1.weight",
    "text_model.final_layer_norm.weight",
]


def write_tokenizer(folder):
    order, _ = byte_characters()
    merges = learn_merges(60)
    vocab = order + [c + "</w>" for c in order] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": CONTEXT}) + "\n")
    return len(vocab)


def clip_config(vocab_size):
    # Different widths, heads and activations in the two towers, so a mix-up cannot pass.
    return CLIPConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": CONTEXT,
            "hidden_act": "quick_gelu",
            "bos_token_id": vocab_size - 2,
            "eos_token_id": vocab_size - 1,
            "pad_token_id": vocab_size - 1,
        },
        vision_config={
            "hidden_size": 24,
            "intermediate_size": 40,
            "num_hidden_layers": 2,
            "num_attention_heads": 3,
            "image_size": IMAGE_SIZE,
            "patch_size": 4,
            "hidden_act": "gelu",
        },
        projection_dim=12,
        logit_scale_init_value=2.6592,
    )


def recorded_init(config):
    """{name: {"normal": std} | {"constant": value}}: the last init call transformers makes on each parameter."""
    calls = {}
    originals = dict(hf_init.TORCH_INIT_FUNCTIONS)

    def recording(kind, original):
        def call(tensor, *args, **kwargs):
            if kind == "normal_":
                calls[tensor.data_ptr()] = {"normal": float(kwargs.get("std", args[1] if len(args) > 1 else 1.0))}
            elif kind in ("ones_", "zeros_"):
                calls[tensor.data_ptr()] = {"constant": 1.0 if kind == "ones_" else 0.0}
            elif kind == "constant_":
                calls[tensor.data_ptr()] = {"constant": float(kwargs.get("val", args[0] if args else 0.0))}
            return original(tensor, *args, **kwargs)

        return call

    for kind in ("normal_", "ones_", "zeros_", "constant_"):
        hf_init.TORCH_INIT_FUNCTIONS[kind] = recording(kind, originals[kind])
    try:
        torch.manual_seed(0)
        model = CLIPModel(config)
    finally:
        hf_init.TORCH_INIT_FUNCTIONS.update(originals)
    table = {}
    for name, p in model.named_parameters():
        record = calls.get(p.data_ptr())
        if record is None:
            # Set in __init__ and never re-initialised (logit_scale): a constant.
            values = p.detach().flatten().unique()
            assert values.numel() == 1, f"{name} has no init call and is not constant"
            record = {"constant": float(values[0])}
        table[name] = record
    return table


def randomise(model, seed):
    """Seeded values of a sensible scale everywhere, so no part (norm gains, biases) is trivially 1 or 0."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=generator)
            if p.ndim == 0:
                p.copy_(2.0 + 0.5 * noise)
            elif p.ndim == 1 and "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * noise)
            elif p.ndim == 1 and "embedding" not in name:
                p.copy_(0.2 * noise)
            elif "embedding" in name and "patch" not in name:
                p.copy_(noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)


class Images(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values=pixel_values).pooler_output


class Texts(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.get_text_features(input_ids=input_ids).pooler_output


def soft_target_case():
    """A batch whose captions repeat: each row's target is spread evenly over the pairs with its caption."""
    generator = torch.Generator().manual_seed(5)
    image = F.normalize(torch.randn(6, 12, generator=generator, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(6, 12, generator=generator, dtype=torch.float64), dim=-1)
    groups = torch.tensor([0, 1, 0, 2, 1, 0])
    scale = torch.tensor(3.0, dtype=torch.float64)
    same = (groups[:, None] == groups[None, :]).double()
    targets = same / same.sum(dim=1, keepdim=True)
    logits = scale.exp() * image @ text.T
    loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    return {"soft.image": image, "soft.text": text, "soft.groups": groups.int(), "soft.scale": scale.reshape(1), "soft.loss": loss.reshape(1)}


def main():
    for folder in (MODEL, ONNX):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    vocab_size = write_tokenizer(MODEL)
    config = clip_config(vocab_size)
    (OUT / "init-config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    init = recorded_init(config)

    model = CLIPModel(config).eval()
    randomise(model, 11)
    model.save_pretrained(MODEL)
    CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=MEAN, image_std=STD
    ).save_pretrained(MODEL)

    with torch.no_grad():
        export(Images(model), torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), "pixel_values", "image_embeds", ONNX / "image_encoder.onnx")
        export(Texts(model), torch.zeros(2, CONTEXT, dtype=torch.int64), "input_ids", "text_embeds", ONNX / "text_encoder.onnx")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(MODEL / name, ONNX / name)

    rng = np.random.default_rng(31)
    images = [
        ("grey 16 x 16", rng.random((16, 16, 1))),
        ("rgb 16 x 16", rng.random((16, 16, 3))),
        ("grey 23 wide x 40 high", rng.random((40, 23, 1))),
        ("grey 30 wide x 21 high", rng.random((21, 30, 1))),
    ]
    texts = [
        "a sar image of a city",
        "SAR image of a harbour with two ships near a bridge",
        "a synthetic aperture radar image of fields and a river and a forest and a lake near an airport",
        "Lake!",
    ]
    tokenizer = CLIPTokenizer(str(MODEL / "vocab.json"), str(MODEL / "merges.txt"), model_max_length=CONTEXT)
    ids = tokenizer(texts, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt").input_ids
    pixels = torch.from_numpy(np.stack([preprocess(image.astype(np.float32)) for _, image in images]))

    reference_model = model.double()
    image_embeds = reference_model.get_image_features(pixel_values=pixels.double()).pooler_output
    text_embeds = reference_model.get_text_features(input_ids=ids).pooler_output
    out = reference_model(input_ids=ids, pixel_values=pixels.double(), return_loss=True)
    out.loss.backward()
    parameters = dict(reference_model.named_parameters())
    tensors = {
        "pixel_values": pixels.float(),
        "input_ids": ids.int(),
        "image_embeds": image_embeds.detach().float(),
        "text_embeds": text_embeds.detach().float(),
        "logits_per_image": out.logits_per_image.detach().float(),
        "loss": out.loss.detach().float().reshape(1),
        **{f"grad.{name}": parameters[name].grad.float().reshape(parameters[name].shape) for name in GRADIENTS},
        **{k: (v.float() if v.is_floating_point() else v) for k, v in soft_target_case().items()},
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "reference.safetensors"))
    reference = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "images": [
            {"name": name, "width": image.shape[1], "height": image.shape[0], "channels": image.shape[2], "data": b64(image, np.float32)}
            for name, image in images
        ],
        "texts": texts,
        "init": init,
    }
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f"{f.relative_to(ROOT)}  {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
