"""The torch engine's first micro-batch (step 0) of train requests, for test/torch/equivalence.test.ts to compare
with the tfjs engine's: a JSON list of {request, out} on stdin; for each, into the safetensors file `out`, the
trainable tensors as they start (`param.<name>`) and their gradients (`grad.<name>`), tfjs layout, by trainable
name, the loss in the metadata. One Python start for every case."""

import json
import sys
from pathlib import Path

from sardine_torch.batches import Position
from sardine_torch.files import write_safetensors
from sardine_torch.trained_model import tfjs_values
from sardine_torch.training import open_session

for case in json.loads(sys.stdin.read()):
    request = case["request"]
    session = open_session(request)
    train = request["train"]
    tensors = {f"param.{t.name}": tfjs_values(t.parameter, t.layout) for t in session.adapted.trainables}
    batch = session.load(Position(train["seed"], 0, 0, train["gradientAccumulation"], train["batchSize"]))
    loss = session.loss_of(batch)
    loss.backward()
    tensors.update({f"grad.{t.name}": tfjs_values(t.parameter.grad, t.layout) for t in session.adapted.trainables if t.parameter.grad is not None})
    write_safetensors(Path(case["out"]), tensors, {"loss": repr(float(loss))})
