"""An ONNX model that declares no graph outputs, for the ONNX CLIP scorer's refusal of one.

Run from the repository root:  .venv/bin/python tools/make_onnx_without_outputs.py

Writes test/fixtures/onnx/image-encoder-without-outputs.onnx: the input the scorer checks
(pixel_values float32 [B, 3, 16, 16], as test/fixtures/clip/image_encoder.onnx takes) and one
Identity node whose result is not an output. onnx.checker accepts it and onnxruntime loads it with
an empty outputNames, so the scorer's own check is what refuses it. A rerun writes the same bytes.
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OUT = Path("test/fixtures/onnx/image-encoder-without-outputs.onnx")

pixels = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 16, 16])
graph = helper.make_graph([helper.make_node("Identity", ["pixel_values"], ["unused"])], "no_outputs", [pixels], [])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="sardine-tools")
model.ir_version = 8
onnx.checker.check_model(model)
OUT.parent.mkdir(parents=True, exist_ok=True)
onnx.save(model, OUT)
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
