"""Tiny random-weight Stable Diffusion pipelines in diffusers format, with reference outputs.

Writes, under test/fixtures/pipelines/:
  sd1-tiny/          an SD-1.x-like pipeline (conv proj_in/proj_out, one CLIPTextModel)
  sdxl-tiny/         an SDXL-like pipeline (linear projections, CLIPTextModel + CLIPTextModelWithProjection,
                     addition_embed_type "text_time", transformer_layers_per_block per block)
  sd1-tiny.reference.safetensors, sdxl-tiny.reference.safetensors
                     fixed inputs and the outputs diffusers / transformers compute from them
  tokens.json        captions and the token ids the reference tokenizers give them
  parameter-counts.json  parameters per component, as torch counts them
  tokenizer-with-sar-classic/, tokenizer-with-sar-json/
                     the tiny tokenizer with the added token `<SAR>` saved the two ways it is found in the
                     wild: the classic files (vocab.json, merges.txt, added_tokens.json, tokenizer_config.json)
                     and the single tokenizer.json that transformers 5 writes.

The SDXL-like UNet is also the base of the tiny training experiments (latents 8 × 8 from 32 × 32 images).
The tokenizer is a real CLIP byte-level BPE (same byte alphabet, `</w>` word ends, special tokens last) whose
merges are learned here from a small caption corpus, so that vocab.json stays ~1000 entries like the tiny
tokenizer diffusers' own tests use. Every parameter is randomised (norm weights too) so a mis-wired parameter
changes the outputs. Text encoders are stored as F16 and the SD-1 VAE as BF16, as real checkpoints are; the
references are computed from the same rounded weights upcast to float32.

Run from the repository root: .venv/bin/python tools/make_tiny_pipelines.py
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import regex
from byte_level import bytes_to_unicode
import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

PIPELINES = Path("test/fixtures/pipelines")
ADDED_TOKEN = "<SAR>"
NUM_MERGES = 420

# A small corpus the BPE merges are learned from: the vocabulary of SAR / remote-sensing captions.
CORPUS = """
a synthetic aperture radar image of a harbour with ships and a breakwater
sar amplitude image of agricultural fields separated by hedges and roads
an airborne radar view of a dense urban area with bright building corners
a river crossing a forest, dark water and textured canopy, speckle noise
single look complex data converted to amplitude and normalised
an airport runway with parked aircraft and taxiways seen by radar
coastal dunes, a beach and the sea surface with wind streaks
a bridge over a canal, double bounce lines and radar shadow
mountains with layover and foreshortening on the slopes facing the sensor
a photo of a city at night with streets and cars
an optical satellite image of farmland in summer
high resolution x band radar image of a port with containers and cranes
c band sentinel image of sea ice and open water
the railway station is next to the market square
three wind turbines in a field near the motorway
oil tanks, storage buildings and a parking lot in an industrial zone
a lake surrounded by trees, calm water looks dark in the radar image
flooded meadows after heavy rain, smooth water and bright trees
vineyards on a hill with regular rows and small paths
a stadium with a large roof and many parked cars around it
greenhouses with metallic frames produce strong reflections
a highway interchange with ramps and overpasses
snow covered mountains and glaciers in winter
the ship leaves the harbour towards the open sea
a small village with houses, gardens and a church tower
this is a test of the tokenizer with numbers and punctuation
""".split("\n")


def train_bpe(lines: list[str], num_merges: int) -> list[tuple[str, str]]:
    """Learns byte-level BPE merges over CLIP-pre-tokenised words (most frequent pair first, ties by name)."""
    byte_chars = bytes_to_unicode()
    pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
    words: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        for word in pattern.findall(line.lower()):
            chars = [byte_chars[b] for b in word.encode("utf-8")]
            chars[-1] += "</w>"
            words[tuple(chars)] += 1
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return merges


def tokenizer_files(directory: Path, merges: list[tuple[str, str]], pad_token: str) -> None:
    """Writes vocab.json, merges.txt and the config files as the published SD checkpoints carry them."""
    directory.mkdir(parents=True, exist_ok=True)
    byte_chars = list(bytes_to_unicode().values())
    vocab: list[str] = byte_chars + [c + "</w>" for c in byte_chars]
    for a, b in merges:
        if a + b not in vocab:
            vocab.append(a + b)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad_token}
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    config = {**specials, "model_max_length": 77, "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def classic_tokenizer(directory: Path, merges: list[tuple[str, str]], pad_token: str) -> None:
    """Replaces what save_pretrained wrote (transformers 5: tokenizer.json only) by the published layout."""
    shutil.rmtree(directory)
    tokenizer_files(directory, merges, pad_token)


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Replaces every parameter with seeded random values of a sensible scale (norm weights around 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=generator)
            if p.ndim == 1 and ("norm" in name) and name.endswith(".weight"):
                p.copy_(1 + 0.2 * noise)
            elif p.ndim == 1:
                p.copy_(0.2 * noise)
            elif "embedding" in name:
                p.copy_(noise)
            else:
                fan_in = p[0].numel()
                p.copy_(noise / fan_in**0.5)


def round_to(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Rounds the weights to `dtype` and back, so the float32 reference sees exactly what the file stores."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())


def text_config(hidden: int, layers: int, heads: int, intermediate: int, act: str, vocab: int, eos: int, projection: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act=act,
        layer_norm_eps=1e-5,
        projection_dim=projection,
        bos_token_id=vocab - 2,
        eos_token_id=eos,
        pad_token_id=1,
    )


def with_added_token(directory: Path, encoder: torch.nn.Module, seed: int) -> tuple[CLIPTokenizer, torch.Tensor]:
    """Adds `<SAR>` like textual inversion does: a new token id and one new embedding row (seeded)."""
    tokenizer = CLIPTokenizer.from_pretrained(directory)
    tokenizer.add_tokens([ADDED_TOKEN])
    row = torch.randn(1, encoder.config.hidden_size, generator=torch.Generator().manual_seed(seed))
    encoder.resize_token_embeddings(len(tokenizer))
    with torch.no_grad():
        encoder.get_input_embeddings().weight[-1:] = row
    return tokenizer, row


def nchw_image(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def text_outputs(prefix: str, encoder: torch.nn.Module, ids: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        result = encoder(ids, output_hidden_states=True)
    out[f"{prefix}.input_ids"] = ids.to(torch.int32)
    out[f"{prefix}.last_hidden_state"] = result.last_hidden_state
    out[f"{prefix}.penultimate_hidden_state"] = result.hidden_states[-2]
    if hasattr(result, "text_embeds"):
        out[f"{prefix}.text_embeds"] = result.text_embeds
    else:
        out[f"{prefix}.pooler_output"] = result.pooler_output


def vae_outputs(vae: AutoencoderKL, image: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        out["vae.image"] = image
        out["vae.latent_mean"] = dist.mean
        out["vae.latent_logvar"] = dist.logvar
        out["vae.decoded"] = vae.decode(dist.mean).sample


PROMPTS = ["a sar image of a harbour, 3 ships & a breakwater!", f"{ADDED_TOKEN} flooded fields near the river"]


def sd1(merges: list[tuple[str, str]]) -> None:
    directory = PIPELINES / "sd1-tiny"
    tokenizer_files(directory / "tokenizer", merges, pad_token="<|endoftext|>")
    tokenizer = CLIPTokenizer.from_pretrained(directory / "tokenizer")
    vocab = len(tokenizer)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(4, 8, 8),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=2,
        cross_attention_dim=16,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(4, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=2,
        sample_size=16,
        scaling_factor=0.18215,
    )
    # eos_token_id 2 is what the published SD-1.x text encoder configs carry (pooling by argmax of the ids).
    text_encoder = CLIPTextModel(text_config(16, 3, 2, 37, "quick_gelu", vocab, 2, 16))
    for i, model in enumerate([unet, vae, text_encoder]):
        randomise(model, 100 + i)
    round_to(vae, torch.bfloat16)
    round_to(text_encoder, torch.float16)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    save_pipeline(pipe, directory, {"vae": torch.bfloat16, "text_encoder": torch.float16})
    classic_tokenizer(directory / "tokenizer", merges, pad_token="<|endoftext|>")

    out: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(7)
    sample = torch.randn(2, 4, 8, 12, generator=g)
    timesteps = torch.tensor([999, 37], dtype=torch.int64)
    vae_outputs(vae, nchw_image(2, 16, 24, 8), out)

    tok_sar, row = with_added_token(directory / "tokenizer", text_encoder, 9)
    out["text_encoder.added_token_embedding"] = row
    ids = tok_sar(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    text_outputs("text_encoder", text_encoder, ids, out)
    pipe.tokenizer = tok_sar
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(PROMPTS, "cpu", 1, False)
        # The UNet is conditioned on the prompt embeddings the pipeline computed.
        out["prompt.prompt_embeds"] = embeds
        out["unet.sample"] = sample
        out["unet.timesteps"] = timesteps.to(torch.int32)
        out["unet.output"] = unet(sample, timesteps, embeds).sample
    save_file({k: v.contiguous() for k, v in out.items()}, PIPELINES / "sd1-tiny.reference.safetensors")


def sdxl(merges: list[tuple[str, str]]) -> None:
    directory = PIPELINES / "sdxl-tiny"
    tokenizer_files(directory / "tokenizer", merges, pad_token="<|endoftext|>")
    tokenizer_files(directory / "tokenizer_2", merges, pad_token="!")
    tokenizer = CLIPTokenizer.from_pretrained(directory / "tokenizer")
    tokenizer_2 = CLIPTokenizer.from_pretrained(directory / "tokenizer_2")
    vocab = len(tokenizer)
    eos = tokenizer.eos_token_id
    # CLIP ViT-L-like first encoder (quick_gelu, argmax pooling) and OpenCLIP bigG-like second one (gelu,
    # projection, pooling at the first end-of-text token): both pooling rules get exercised.
    text_encoder = CLIPTextModel(text_config(8, 2, 2, 24, "quick_gelu", vocab, 2, 8))
    text_encoder_2 = CLIPTextModelWithProjection(text_config(16, 3, 4, 40, "gelu", vocab, eos, 12))
    addition_time_embed_dim = 4
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(4, 8, 8),
        layers_per_block=(1, 2, 1),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(1, 1, 2),
        transformer_layers_per_block=(1, 2, 1),
        use_linear_projection=True,
        cross_attention_dim=8 + 16,
        addition_embed_type="text_time",
        addition_time_embed_dim=addition_time_embed_dim,
        projection_class_embeddings_input_dim=6 * addition_time_embed_dim + 12,
        norm_num_groups=2,
        upcast_attention=True,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(4, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
        scaling_factor=0.13025,
    )
    for i, model in enumerate([unet, vae, text_encoder, text_encoder_2]):
        randomise(model, 200 + i)
    round_to(unet, torch.float16)
    round_to(text_encoder, torch.float16)
    round_to(text_encoder_2, torch.float16)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading"
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, add_watermarker=False,
    )
    save_pipeline(pipe, directory, {"unet": torch.float16, "text_encoder": torch.float16, "text_encoder_2": torch.float16})
    classic_tokenizer(directory / "tokenizer", merges, pad_token="<|endoftext|>")
    classic_tokenizer(directory / "tokenizer_2", merges, pad_token="!")

    out: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(11)
    # 6 x 10 latents: not a multiple of 2**upsamplers, so the up blocks must follow the skip sizes.
    sample = torch.randn(2, 4, 6, 10, generator=g)
    timesteps = torch.tensor([500, 1], dtype=torch.int64)
    vae_outputs(vae, nchw_image(1, 24, 40, 12), out)

    tok_sar, row = with_added_token(directory / "tokenizer", text_encoder, 13)
    tok2_sar, row2 = with_added_token(directory / "tokenizer_2", text_encoder_2, 14)
    out["text_encoder.added_token_embedding"] = row
    out["text_encoder_2.added_token_embedding"] = row2
    for prefix, tok, encoder in [("text_encoder", tok_sar, text_encoder), ("text_encoder_2", tok2_sar, text_encoder_2)]:
        ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        text_outputs(prefix, encoder, ids, out)
    pipe.tokenizer, pipe.tokenizer_2 = tok_sar, tok2_sar
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(PROMPTS, prompt_2=None, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False)
    out["prompt.prompt_embeds"] = embeds
    out["prompt.pooled_prompt_embeds"] = pooled
    out["prompt.add_time_ids"] = pipe._get_add_time_ids((24, 40), (0, 0), (24, 40), torch.float32, text_encoder_2.config.projection_dim)
    # The UNet is conditioned on what the pipeline computed; the second row's time ids differ (another size/crop).
    time_ids = torch.tensor([[24.0, 40.0, 0.0, 0.0, 24.0, 40.0], [1024.0, 768.0, 16.0, 32.0, 512.0, 512.0]])
    with torch.no_grad():
        out["unet.sample"] = sample
        out["unet.timesteps"] = timesteps.to(torch.int32)
        out["unet.time_ids"] = time_ids
        out["unet.output"] = unet(sample, timesteps, embeds, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
    save_file({k: v.contiguous() for k, v in out.items()}, PIPELINES / "sdxl-tiny.reference.safetensors")


PARAMETER_COUNTS: dict[str, dict[str, int]] = {}


def save_pipeline(pipe, directory: Path, dtypes: dict[str, torch.dtype]) -> None:
    """save_pretrained with some components stored in half precision (as published checkpoints are)."""
    for name, dtype in dtypes.items():
        getattr(pipe, name).to(dtype)
    pipe.save_pretrained(directory, safe_serialization=True)
    for name in dtypes:
        getattr(pipe, name).to(torch.float32)
    PARAMETER_COUNTS[directory.name] = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ["unet", "vae", "text_encoder", "text_encoder_2"]
        if getattr(pipe, name, None) is not None
    }


CAPTIONS = [
    "a sar image of a harbour",
    "A SAR image of a Harbour",
    "",
    "   ",
    "<SAR>",
    "<sar>",
    "a <SAR> image",
    "x<SAR>y",
    "<SAR><SAR> twice",
    "a photo of <SAR>, at night.",
    "it's a ship; they're docked, we'll see & don't worry",
    "the ship's mast isn't visible",
    "numbers: 3 ships, 10.5 m resolution, 2024-06-01, 1,000,000 pixels",
    "x-band @ 9.6 GHz (3 cm)",
    "100% #1 $5 ~tilde~ `backtick` ^caret^ |pipe|",
    "multiple   spaces\tand\ttabs\nand\nnew lines",
    "  leading and trailing spaces  ",
    "café, naïve façade, Zürich, Straße",
    "ΟΔΟΣ ΣΟΦΙΑΣ and ψυχή",
    "İstanbul and DİYARBAKIR",
    "東京の港 and 北京",
    "서울 항구",
    "ميناء الإسكندرية",
    "emoji 🛰️ satellite 🚢 ship 🌊",
    "non\u00a0breaking\u3000spaces and\u2009thin",
    "zero\u200bwidth joiner",
    "byte order\ufeffmark",
    "next\u0085line",
    "e\u0301 combining accent vs é",
    "ﬁne ligature ﬂow",
    "dots... and!!! more???",
    "quotes \"double\" and 'single' and «guillemets»",
    "<|endoftext|> in the text",
    "a<|startoftext|>b",
    "<|ENDOFTEXT|> in capitals is no special token",
    "hyphen-ated words and snake_case and CamelCase",
    "URL https://example.org/path?q=1",
    "email someone@example.com",
    "½ ¼ ² ³ Ⅻ numerals",
    "mixed123numbers456and letters",
    "the quick brown fox jumps over the lazy dog",
    "sentinel-1 iw grd vv+vh",
    "an unusually long caption " + " ".join(f"word{i}" for i in range(60)),
    "a river crossing a forest, dark water and textured canopy, speckle noise",
    "high resolution x band radar image of a port with containers and cranes",
    "tab\tseparated\tvalues",
    "'s 't 're 've 'm 'll 'd",
    "CAPS LOCK IS ON",
    "a very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very very long repetition",
    "ünïcödé ŵîth ďîåçŕîţîčš",
    "end with punctuation?!",
]


def tokens_reference(merges: list[tuple[str, str]]) -> None:
    base = CLIPTokenizer.from_pretrained(PIPELINES / "sd1-tiny" / "tokenizer")
    with_sar = CLIPTokenizer.from_pretrained(PIPELINES / "sd1-tiny" / "tokenizer")
    with_sar.add_tokens([ADDED_TOKEN])
    bang_pad = CLIPTokenizer.from_pretrained(PIPELINES / "sdxl-tiny" / "tokenizer_2")
    bang_pad.add_tokens([ADDED_TOKEN])

    # The same tokenizer with <SAR>, as files: classic layout (older transformers, diffusers textual inversion)...
    classic = PIPELINES / "tokenizer-with-sar-classic"
    tokenizer_files(classic, merges, pad_token="<|endoftext|>")
    added_id = len(base)
    (classic / "added_tokens.json").write_text(json.dumps({ADDED_TOKEN: added_id}))
    config = json.loads((classic / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {
        str(added_id): {"content": ADDED_TOKEN, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False, "special": False}
    }
    (classic / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    # ... and what transformers 5 writes (tokenizer.json + tokenizer_config.json).
    modern = PIPELINES / "tokenizer-with-sar-json"
    with_sar.save_pretrained(modern)

    def ids(tok: CLIPTokenizer) -> list[list[int]]:
        return tok(CAPTIONS, padding="max_length", max_length=77, truncation=True).input_ids

    reference = ids(with_sar)
    for directory in [classic, modern]:
        assert ids(CLIPTokenizer.from_pretrained(directory)) == reference, directory
    document = {
        "captions": CAPTIONS,
        "base": ids(base),
        "with_sar": reference,
        "with_sar_pad_bang": ids(bang_pad),
    }
    (PIPELINES / "tokens.json").write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def main() -> None:
    torch.manual_seed(0)
    shutil.rmtree(PIPELINES, ignore_errors=True)
    PIPELINES.mkdir(parents=True)
    merges = train_bpe([line for line in CORPUS if line.strip()], NUM_MERGES)
    sd1(merges)
    sdxl(merges)
    tokens_reference(merges)
    (PIPELINES / "parameter-counts.json").write_text(json.dumps(PARAMETER_COUNTS, indent=2, sort_keys=True))
    total = sum(f.stat().st_size for f in PIPELINES.rglob("*") if f.is_file())
    print(f"fixtures written: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
