"""The trainable parameter counts of an adaptation (JSON on stdin: {"base", "adaptation"}) as the torch engine's
worker builds them (sardine_torch.adaptation.adapt) and, for LoRA, as PEFT builds them: prints JSON
{"engine": {group: count}, "peft": {component: count}} (PEFT only for the LoRA components)."""

import json
import sys

from diffusers import UNet2DConditionModel
from peft import LoraConfig, inject_adapter_in_model

from sardine_torch.adaptation import adapt
from sardine_torch.pipeline import frozen, load_text_encoders, load_unet, load_vae

request = json.load(sys.stdin)
base, adaptation = request["base"], request["adaptation"]
encoders = load_text_encoders(base)
models = {"unet": frozen(load_unet(base)), "vae": frozen(load_vae(base)), **{e.name: frozen(e.model) for e in encoders}}
adapted = adapt(models, encoders, adaptation, seed=0)
engine: dict[str, int] = {}
for t in adapted.trainables:
    engine[t.group] = engine.get(t.group, 0) + t.parameter.numel()

peft: dict[str, int] = {}
unet_treatment = adaptation["components"]["unet"]
if unet_treatment["_tag"] == "lora":
    unet = frozen(UNet2DConditionModel.from_pretrained(base, subfolder="unet"))
    config = LoraConfig(r=unet_treatment["rank"], lora_alpha=unet_treatment["alpha"], target_modules=unet_treatment["targets"])
    inject_adapter_in_model(config, unet)
    peft["unet"] = sum(p.numel() for p in unet.parameters() if p.requires_grad)

print(json.dumps({"engine": engine, "peft": peft}))
