"""The real consumer of `sardine export --format onnx` (test/onnx/onnx-generate.test.ts): Python's onnxruntime
loads each graph the manifest names, with the inputs and outputs it names, and runs it at batch 1 and 2 on seeded
inputs; diffusers' and transformers' models of the pipeline the export was made from run the same inputs.
argv: the export folder, the pipeline folder. Prints {graph: {"inputs", "outputs", "worst": max |onnx − torch|}}."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

export, pipeline = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((export / "sardine-onnx.json").read_text())
rng = np.random.default_rng(0)
unet = UNet2DConditionModel.from_pretrained(pipeline, subfolder="unet", torch_dtype=torch.float32).eval()
vae = AutoencoderKL.from_pretrained(pipeline, subfolder="vae", torch_dtype=torch.float32).eval()
text = CLIPTextModel.from_pretrained(pipeline, subfolder="text_encoder", dtype=torch.float32).eval()
tokenizer = CLIPTokenizer.from_pretrained(str(export / manifest["tokenizer"]))
side = manifest["sampleSize"]
hidden = text.config.hidden_size


def inputs_for(name, batch):
    if name == "unet":
        return [rng.standard_normal((batch, manifest["latentChannels"], side, side), dtype=np.float32),
                np.array([321.5], dtype=np.float32),
                rng.standard_normal((batch, manifest["tokens"], hidden), dtype=np.float32)]
    if name == "vae_decoder":
        return [rng.standard_normal((batch, manifest["latentChannels"], side, side), dtype=np.float32)]
    ids = tokenizer(["a harbour", "radar image of a field"][:batch], padding="max_length", max_length=manifest["tokens"], return_tensors="np").input_ids
    return [ids.astype(np.int64)]


def reference(name, values):
    tensors = [torch.from_numpy(v) for v in values]
    with torch.no_grad():
        if name == "unet":
            return unet(*tensors).sample.numpy()
        if name == "vae_decoder":
            return vae.decode(tensors[0]).sample.numpy()
        return text(tensors[0]).last_hidden_state.numpy()


report = {}
for name, graph in manifest["graphs"].items():
    session = ort.InferenceSession(str(export / graph["file"]), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in (1, 2):
        values = inputs_for(name, batch)
        feeds = dict(zip(graph["inputs"], values))
        out = session.run([graph["outputs"][0]], feeds)[0]
        worst = max(worst, float(np.abs(out - reference(name, values)).max()))
    report[name] = {"inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()], "worst": worst}
print(json.dumps(report))
