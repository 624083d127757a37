"""sardine's exports loaded live by the pinned diffusers / transformers (the real consumers), for test/export/interop.test.ts.

Usage: python test/export/load_exports.py BASE EXPORTS INPUTS OUT

  BASE     the diffusers pipeline the model was trained from (an SDXL one)
  EXPORTS  a folder with sardine's exports of one trained model: kohya.safetensors, peft.safetensors,
           embedding.safetensors (clip_l / clip_g) and merged/ (the diffusers pipeline folder)
  INPUTS   a safetensors file with the UNet inputs unet.sample, unet.timesteps, unet.encoder_hidden_states,
           unet.text_embeds, unet.time_ids
  OUT      the safetensors file written: for each way of loading <kind>, `unet.<kind>` (the UNet's output on
           the inputs) and `prompt.<kind>.prompt_embeds` / `.pooled` (encode_prompt of the prompt in its
           metadata), plus `<kind>.input_ids` of the first tokenizer. The metadata also holds the prompt each
           pipeline's maybe_convert_prompt made of the token prompt.

kinds: base; kohya, peft (load_lora_weights); embedding (load_textual_inversion of clip_l and clip_g, prompted
with the spelled-out token); kohya_embedding (both); merged (DiffusionPipeline.from_pretrained of the merged
folder, prompted with the token as declared).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import load_file, save_file

PROMPT = "a sar image of a harbour with ships"
TOKEN_PROMPT = "<SAR> image of a harbour with ships"


def main(base: str, exports: Path, inputs_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    given = load_file(inputs_file)
    inputs = dict(
        sample=given["unet.sample"],
        timestep=given["unet.timesteps"].long(),
        encoder_hidden_states=given["unet.encoder_hidden_states"],
        added_cond_kwargs=dict(text_embeds=given["unet.text_embeds"], time_ids=given["unet.time_ids"]),
    )
    embedding = load_file(str(exports / "embedding.safetensors"))
    token = "<SAR>"
    spelled = " ".join([token] + [f"{token}_{i}" for i in range(1, embedding["clip_l"].shape[0])])
    out: dict[str, torch.Tensor] = {}
    converted: dict[str, str] = {}

    def record(kind: str, pipe: DiffusionPipeline, prompt: str) -> None:
        with torch.no_grad():
            out[f"unet.{kind}"] = pipe.unet(**inputs).sample
            embeds, _, pooled, _ = pipe.encode_prompt(prompt, device="cpu", do_classifier_free_guidance=False)
        out[f"prompt.{kind}.prompt_embeds"] = embeds
        out[f"prompt.{kind}.pooled"] = pooled
        # What encode_prompt tokenised: the prompt after diffusers' multi-vector expansion.
        expanded = pipe.maybe_convert_prompt(prompt, pipe.tokenizer)
        out[f"{kind}.input_ids"] = pipe.tokenizer(expanded, padding="max_length", max_length=77, return_tensors="pt").input_ids.to(torch.int32)
        converted[kind] = pipe.maybe_convert_prompt(TOKEN_PROMPT, pipe.tokenizer)

    def plain() -> StableDiffusionXLPipeline:
        return StableDiffusionXLPipeline.from_pretrained(base, torch_dtype=torch.float32)

    record("base", plain(), PROMPT)
    for kind in ("kohya", "peft"):
        pipe = plain()
        pipe.load_lora_weights(str(exports / f"{kind}.safetensors"))
        record(kind, pipe, PROMPT)
    for kind, lora in (("embedding", False), ("kohya_embedding", True)):
        pipe = plain()
        if lora:
            pipe.load_lora_weights(str(exports / "kohya.safetensors"))
        pipe.load_textual_inversion(embedding["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
        pipe.load_textual_inversion(embedding["clip_g"], token=token, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
        record(kind, pipe, TOKEN_PROMPT.replace(token, spelled))
    record("merged", DiffusionPipeline.from_pretrained(str(exports / "merged"), torch_dtype=torch.float32), TOKEN_PROMPT)

    save_file(
        {k: v.contiguous().float() if v.is_floating_point() else v.contiguous() for k, v in out.items()},
        out_file,
        metadata={"prompt": PROMPT, "token_prompt": TOKEN_PROMPT, "spelled": spelled, "converted": json.dumps(converted)},
    )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4])
