"""Loads a CLIP folder with transformers (CLIPModel, CLIPTokenizer) and prints, as JSON, the loading report and
the normalised projected text embeddings of the captions given on the command line (test/clip-model/clip-transformers.test.ts)."""
import json
import sys

import torch
from transformers import CLIPModel, CLIPTokenizer

folder, captions = sys.argv[1], sys.argv[2:]
model, info = CLIPModel.from_pretrained(folder, output_loading_info=True)
tokenizer = CLIPTokenizer.from_pretrained(folder)
tokens = tokenizer(captions, padding="max_length", max_length=model.config.text_config.max_position_embeddings, truncation=True, return_tensors="pt")
with torch.no_grad():
    out = model.get_text_features(**tokens)
features = out if isinstance(out, torch.Tensor) else out.pooler_output
features = features / features.norm(dim=-1, keepdim=True)
print(json.dumps({"loading": {k: len(v) for k, v in info.items()}, "texts": features.tolist()}))
