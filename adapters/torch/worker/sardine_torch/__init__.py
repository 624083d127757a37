"""sardine's torch engine worker: the tensor work of the Engine service on PyTorch, diffusers, PEFT and accelerate
(docs/torch-worker.md). Started by adapters/torch/torch-engine.ts as `python -m sardine_torch`."""
