"""A tiny CLIP-like image + text encoder pair as ONNX files, with reference embeddings.

Run from the repository root:  .venv/bin/python tools/make_tiny_clip_onnx.py

Writes test/fixtures/clip/ in the layout sardine's ONNX CLIP scorer reads (docs/sar-clip.md):
  image_encoder.onnx        pixel_values float32 [B, 3, 16, 16] -> image_embeds [B, 12]
  text_encoder.onnx         input_ids int64 [B, 16] -> text_embeds [B, 12] (pooled at the first
                            end-of-text token, the highest id, as CLIP does with argmax)
  vocab.json, merges.txt    a CLIP byte-level BPE vocabulary (256 bytes, 256 bytes + </w>, learned
                            merges, <|startoftext|>, <|endoftext|>) learned from a few SAR captions
  tokenizer_config.json     model_max_length 16
  preprocessor_config.json  CLIP's image mean / std, shortest edge 16, centre crop 16 x 16
  reference.json            inputs and what the reference computes for them:
                            token ids from transformers' CLIPTokenizer; pixel tensors from PIL's
                            float ("F") bicubic resize per channel + torchvision's centre-crop rule;
                            embeddings from the torch model (float64), unit-normalised; and
                            100 * cosine alignment of each image with the text of the same index.
Weights come from a seeded torch generator; a rerun rewrites the same files.
"""

import base64
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from torch import nn
from transformers import CLIPTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "clip"
CONTEXT = 16
IMAGE_SIZE = 16
EMBED = 12
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
CAPTIONS = [
    "a sar image of a city with roads and buildings",
    "an airborne radar image of fields and a river",
    "a synthetic aperture radar image of a harbour with ships",
    "sar image of a forest and a lake",
    "radar image of an airport runway",
]


def byte_characters():
    """GPT-2's byte -> printable character table, in CLIP's vocabulary order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in printable] + [table[b] for b in range(256) if b not in printable], table


def learn_merges(count):
    """Greedy BPE on the caption words (most frequent pair first, ties by the pair's text)."""
    _, table = byte_characters()
    words = Counter(w for caption in CAPTIONS for w in re.findall(r"[a-z]+", caption.lower()))
    split = {w: [table[b] for b in w.encode()][:-1] + [table[w.encode()[-1]] + "</w>"] for w in words}
    merges = []
    for _ in range(count):
        pairs = Counter()
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w in words:
            s, out, i = split[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    return merges


def write_tokenizer():
    order, _ = byte_characters()
    merges = learn_merges(60)
    vocab = order + [c + "</w>" for c in order] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (OUT / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (OUT / "tokenizer_config.json").write_text(json.dumps({"model_max_length": CONTEXT}) + "\n")
    return len(vocab)


class ImageEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.proj = nn.Linear(8 * (IMAGE_SIZE // 4) ** 2, EMBED)

    def forward(self, pixel_values):
        return self.proj(nn.functional.gelu(self.patch(pixel_values)).flatten(1))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size, width=8):
        super().__init__()
        self.token = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.randn(CONTEXT, width) * 0.1)
        self.ln1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, EMBED) * width**-0.5)
        self.register_buffer("causal", torch.full((CONTEXT, CONTEXT), float("-inf")).triu(1))

    def forward(self, input_ids):
        x = self.token(input_ids) + self.position
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=self.causal.to(x.dtype), need_weights=False)[0]
        x = self.ln_final(x + self.mlp(self.ln2(x)))
        # The end-of-text token has the highest id; argmax finds its first occurrence.
        eot = input_ids.to(torch.int32).argmax(dim=-1)
        return x[torch.arange(x.shape[0]), eot] @ self.proj


def export(model, example, input_name, output_name, file):
    torch.onnx.export(
        model,
        (example,),
        str(file),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def preprocess(image):
    """[H, W, C] float32 in [0, 1] -> [3, S, S]: PIL float bicubic resize of the shortest edge to S,
    torchvision's centre crop (round half to even), CLIP normalisation; grey is repeated to RGB."""
    h, w, c = image.shape
    if w <= h:
        new_w, new_h = IMAGE_SIZE, int(IMAGE_SIZE * h / w)
    else:
        new_w, new_h = int(IMAGE_SIZE * w / h), IMAGE_SIZE
    channels = []
    for k in range(c):
        band = Image.fromarray(np.ascontiguousarray(image[:, :, k], dtype=np.float32), mode="F")
        if (new_w, new_h) != (w, h):
            band = band.resize((new_w, new_h), Image.BICUBIC)
        channels.append(np.asarray(band, dtype=np.float32))
    top, left = int(round((new_h - IMAGE_SIZE) / 2.0)), int(round((new_w - IMAGE_SIZE) / 2.0))
    resized = np.stack(channels)[:, top:top + IMAGE_SIZE, left:left + IMAGE_SIZE]
    if c == 1:
        resized = np.repeat(resized, 3, axis=0)
    mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(STD, dtype=np.float32)[:, None, None]
    return ((resized - mean) / std).astype(np.float32)


def b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def unit(e):
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tokenizer()
    (OUT / "preprocessor_config.json").write_text(json.dumps({
        "size": {"shortest_edge": IMAGE_SIZE},
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "image_mean": MEAN,
        "image_std": STD,
    }, indent=2) + "\n")

    torch.manual_seed(20)
    image_encoder, text_encoder = ImageEncoder().eval(), TextEncoder(vocab_size).eval()
    export(image_encoder, torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE), "pixel_values", "image_embeds", OUT / "image_encoder.onnx")
    export(text_encoder, torch.zeros(2, CONTEXT, dtype=torch.int64), "input_ids", "text_embeds", OUT / "text_encoder.onnx")

    rng = np.random.default_rng(8)
    images = [
        ("grey 16 x 16", rng.random((16, 16, 1))),
        ("rgb 16 x 16", rng.random((16, 16, 3))),
        ("grey 23 wide x 40 high: upscale, crop rows", rng.random((40, 23, 1))),
        ("grey 50 wide x 37 high: downscale, crop columns", rng.random((37, 50, 1))),
    ]
    texts = [
        "a sar image of a city",
        "An airborne radar image of fields and a river",
        "a synthetic aperture radar image of a harbour with ships and a forest and a lake near an airport",
        "Harbour, 2024!",
    ]
    tokenizer = CLIPTokenizer(str(OUT / "vocab.json"), str(OUT / "merges.txt"), model_max_length=CONTEXT)
    ids = tokenizer(texts, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="np").input_ids
    pixels = np.stack([preprocess(image.astype(np.float32)) for _, image in images])

    with torch.no_grad():
        image_embeds = image_encoder.double()(torch.from_numpy(pixels).double()).numpy()
        text_embeds = text_encoder.double()(torch.from_numpy(ids.astype(np.int64))).numpy()
    image_unit, text_unit = unit(image_embeds), unit(text_embeds)
    reference = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "PIL": Image.__version__},
        "images": [
            {"name": name, "width": image.shape[1], "height": image.shape[0], "channels": image.shape[2], "data": b64(image, np.float32)}
            for name, image in images
        ],
        "pixelValues": b64(pixels, np.float32),
        "texts": texts,
        "inputIds": ids.astype(int).tolist(),
        "imageEmbeds": image_unit.tolist(),
        "textEmbeds": text_unit.tolist(),
        "alignment": (100 * np.sum(image_unit * text_unit, axis=1)).tolist(),
    }
    (OUT / "reference.json").write_text(json.dumps(reference) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
