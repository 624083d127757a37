"""What diffusers and transformers make of the SDXL architecture folder (experiments/architectures/sdxl), for the
tests of sardine's reading of it: test/fixtures/sdxl/goldens.json with

  parameters    per component, the parameter count and the number of tensors of the model that diffusers'
                / transformers' `from_config` builds (on the meta device: no memory, no weights)
  tokens        for each tokenizer folder: len(tokenizer), the bos / eos / pad ids, model_max_length, and the
                ids `tokenizer(text, padding="max_length", truncation=True)` gives a few prompts (SAR captions,
                the learned token, punctuation, accents, a prompt longer than 77 tokens)

Run from the repository root: .venv/bin/python tools/make_sdxl_goldens.py
"""

import json
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

ARCHITECTURE = Path("experiments/architectures/sdxl")
OUT = Path("test/fixtures/sdxl/goldens.json")

PROMPTS = [
    "a photo of a cat",
    "<SAR> image of a harbour with ships, Sentinel-1 VV 10 m",
    "SAR amplitude image of agricultural fields separated by hedges and roads!",
    "Café au lait — naïve façade, 3×4 m², ‘quotes’ and “more”",
    "an airborne radar view of a dense urban area with bright building corners, " * 6,
    "",
]


def count(model: torch.nn.Module):
    return {"parameters": sum(p.numel() for p in model.parameters()), "tensors": len(list(model.parameters()))}


def main():
    parameters = {}
    with init_empty_weights():
        parameters["unet"] = count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(ARCHITECTURE / "unet")))
        parameters["vae"] = count(AutoencoderKL.from_config(AutoencoderKL.load_config(ARCHITECTURE / "vae")))
        parameters["text_encoder"] = count(CLIPTextModel(CLIPTextConfig.from_pretrained(ARCHITECTURE / "text_encoder")))
        parameters["text_encoder_2"] = count(CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(ARCHITECTURE / "text_encoder_2")))
    tokens = {}
    for folder in ["tokenizer", "tokenizer_2"]:
        tokenizer = CLIPTokenizer.from_pretrained(ARCHITECTURE / folder)
        tokens[folder] = {
            "size": len(tokenizer),
            "bos": tokenizer.bos_token_id,
            "eos": tokenizer.eos_token_id,
            "pad": tokenizer.pad_token_id,
            "maxLength": tokenizer.model_max_length,
            "prompts": [
                {"text": text, "ids": tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids}
                for text in PROMPTS
            ],
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"parameters": parameters, "tokens": tokens}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(parameters, indent=1))


if __name__ == "__main__":
    main()
