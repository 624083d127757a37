"""The real consumer of `sardine export --format onnx` (test/onnx/onnx-generate.test.ts): Python's onnxruntime
loads each graph the manifest names, with the inputs and outputs it names, and runs it at batch 1 and 2 on seeded
inputs; diffusers' and transformers' models of the pipeline the export was made from run the same inputs, and every
output sardine reads (SDXL: each encoder's penultimate hidden state, the pooled text_embeds) is compared.
argv: the export folder, the pipeline folder. Prints {graph: {"inputs", "outputs", "worst": max |onnx − torch|}}."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTokenizer

export, pipeline = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((export / "sardine-onnx.json").read_text())
index = json.loads((Path(pipeline) / "model_index.json").read_text())
sdxl = manifest["family"] == "sdxl"
rng = np.random.default_rng(0)
unet = UNet2DConditionModel.from_pretrained(pipeline, subfolder="unet", torch_dtype=torch.float32).eval()
vae = AutoencoderKL.from_pretrained(pipeline, subfolder="vae", torch_dtype=torch.float32).eval()
encoders = [name for name in ("text_encoder", "text_encoder_2") if name in manifest["graphs"]]
texts = {name: getattr(transformers, index[name][1]).from_pretrained(pipeline, subfolder=name, dtype=torch.float32).eval() for name in encoders}
tokenizers = {name: CLIPTokenizer.from_pretrained(str(export / manifest["tokenizer" if name == "text_encoder" else "tokenizer_2"])) for name in encoders}
side = manifest["sampleSize"]
hidden = sum(t.config.hidden_size for t in texts.values())


def inputs_for(name, batch):
    if name == "unet":
        values = [rng.standard_normal((batch, manifest["latentChannels"], side, side), dtype=np.float32),
                  np.array([321.5], dtype=np.float32),
                  rng.standard_normal((batch, manifest["tokens"], hidden), dtype=np.float32)]
        if sdxl:
            values += [rng.standard_normal((batch, texts["text_encoder_2"].config.projection_dim), dtype=np.float32),
                       np.array([[64, 48, 0, 8, 64, 48]] * batch, dtype=np.float32)]
        return values
    if name == "vae_decoder":
        return [rng.standard_normal((batch, manifest["latentChannels"], side, side), dtype=np.float32)]
    ids = tokenizers[name](["a harbour", "radar image of a field"][:batch], padding="max_length", max_length=manifest["tokens"], return_tensors="np").input_ids
    return [ids.astype(np.int64)]


def reference(name, values):
    """The outputs sardine reads, in the manifest's order, as diffusers' pipelines compute them."""
    tensors = [torch.from_numpy(v) for v in values]
    with torch.no_grad():
        if name == "unet":
            added = {"added_cond_kwargs": {"text_embeds": tensors[3], "time_ids": tensors[4]}} if sdxl else {}
            return [unet(*tensors[:3], **added).sample.numpy()]
        if name == "vae_decoder":
            return [vae.decode(tensors[0]).sample.numpy()]
        out = texts[name](tensors[0], output_hidden_states=True)
        if not sdxl:
            return [out.last_hidden_state.numpy()]
        return [out.hidden_states[-2].numpy()] + ([out.text_embeds.numpy()] if name == "text_encoder_2" else [])


report = {}
for name, graph in manifest["graphs"].items():
    session = ort.InferenceSession(str(export / graph["file"]), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in (1, 2):
        values = inputs_for(name, batch)
        feeds = dict(zip(graph["inputs"], values))
        expected = reference(name, values)
        outs = session.run(graph["outputs"][: len(expected)], feeds)
        worst = max(worst, *(float(np.abs(o - e).max()) for o, e in zip(outs, expected)))
    report[name] = {"inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()], "worst": worst}
print(json.dumps(report))
