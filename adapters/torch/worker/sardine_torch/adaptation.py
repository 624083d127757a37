"""The resolved adaptation (framework/declaration/adaptation.ts, received as its JSON) applied to torch models.

What trains is a filter over each component's parameters, as in the tfjs engine
(adapters/tfjs/training/trainable-model.ts):
  frozen  nothing;
  full    the parameters `only` selects (module-patterns.ts: a pattern matches a dotted name when its
          segments match the name's last segments, `*` any run of characters within a segment; a parameter
          is selected when its name or the name of a module holding it matches);
  lora    PEFT adapters on the Linear / Conv2d modules the `targets` patterns match, A drawn from sardine's
          stream (DrawPurpose.loraInit keyed by the module name, N(0, 1/rank²), as lora.ts), B zero;
  token   new embedding rows (one per spelling) in every text encoder, from the init word's embedding;
          only those rows train (`trained` encoders), the pretrained table stays as it is.
Every trainable tensor has sardine's name (`unet.conv_in.weight`, `unet.<module>.lora_A.weight`,
`text_encoder.text_model.embeddings.added_token_embedding.weight`) and an optimiser group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import draws
from .pipeline import TextEncoder, checkpoint_prefix, named_modules, named_parameters

ADDED_TOKEN_EMBEDDING = "text_model.embeddings.added_token_embedding.weight"


def pattern_matcher(pattern: str) -> Callable[[str], bool]:
    segments = [re.compile("^" + ".*".join(re.escape(p) for p in s.split("*")) + "$") for s in pattern.split(".")]

    def matches(name: str) -> bool:
        parts = name.split(".")
        offset = len(parts) - len(segments)
        return offset >= 0 and all(segment.match(parts[offset + i]) for i, segment in enumerate(segments))

    return matches


def enclosing_names(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def selected_parameters(names: Sequence[str], only: Sequence[str]) -> list[str]:
    matchers = [pattern_matcher(p) for p in only]
    return [n for n in names if any(m(e) for e in enclosing_names(n) for m in matchers)]


def layouts(model: nn.Module) -> dict[str, str]:
    """The tfjs layout kind of each parameter (checkpoint names): Linear weights "linear", Conv2d weights
    "conv", others "as-is"."""
    kinds: dict[str, str] = {}
    for name, module in named_modules(model):
        if isinstance(module, nn.Linear):
            kinds[f"{name}.weight"] = "linear"
        elif isinstance(module, nn.Conv2d):
            kinds[f"{name}.weight"] = "conv"
    return kinds


def to_tfjs(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """torch layout → tfjs layout (Linear [out, in] → [in, out]; Conv2d OIHW → HWIO)."""
    if layout == "linear":
        return tensor.t()
    if layout == "conv":
        return tensor.permute(2, 3, 1, 0)
    return tensor


def from_tfjs(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "linear":
        return tensor.t()
    if layout == "conv":
        return tensor.permute(3, 2, 0, 1)
    return tensor


@dataclass
class Trainable:
    name: str
    parameter: nn.Parameter
    group: str
    layout: str


@dataclass
class LoraModule:
    """An adapted module, as the trained model's manifest lists it."""

    module: str
    kind: str
    in_features: int
    out_features: int
    kernel: tuple[int, int]

    def manifest(self) -> dict[str, Any]:
        return {"module": self.module, "kind": self.kind, "inFeatures": self.in_features, "outFeatures": self.out_features, "kernel": list(self.kernel)}


@dataclass
class Adapted:
    trainables: list[Trainable] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    lora: dict[str, list[LoraModule]] = field(default_factory=dict)
    # Encoders whose token rows are re-projected after each step, with the pretrained rows' mean norm.
    token_norms: dict[str, float] = field(default_factory=dict)
    token_rows: dict[str, nn.Parameter] = field(default_factory=dict)


def adaptable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in named_modules(model) if isinstance(m, (nn.Linear, nn.Conv2d))]


def lora_module(name: str, module: nn.Module) -> LoraModule:
    if isinstance(module, nn.Linear):
        return LoraModule(name, "linear", module.in_features, module.out_features, (1, 1))
    return LoraModule(name, "conv", module.in_channels, module.out_channels, tuple(module.kernel_size))


def initial_lora_down(m: LoraModule, rank: int, seed: int) -> torch.Tensor:
    """lora.ts's initialLoraWeights: N(0, 1)/rank in tfjs layout ([in, r]; conv [kh, kw, in, r]), as torch's A."""
    tfjs_shape = [m.in_features, rank] if m.kind == "linear" else [m.kernel[0], m.kernel[1], m.in_features, rank]
    values = draws.TrainingDraws(seed, draws.LORA_INIT, draws.hash_string(m.module)).normals(int(np.prod(tfjs_shape)))
    down = torch.from_numpy((values / np.float32(rank)).astype(np.float32).reshape(tfjs_shape))
    return from_tfjs(down, m.kind)


def targeted(model: nn.Module, component: str, targets: Sequence[str]) -> list[tuple[str, nn.Module]]:
    modules = adaptable_modules(model)
    matchers = [(t, pattern_matcher(t)) for t in targets]
    unmatched = [t for t, m in matchers if not any(m(n) for n, _ in modules)]
    if unmatched:
        raise ValueError(f"{component}: LoRA targets {', '.join(map(repr, unmatched))} match no Linear or Conv2d module")
    return [(n, m) for n, m in modules if any(match(n) for _, match in matchers)]


def add_lora(model: nn.Module, component: str, treatment: dict[str, Any], seed: int, adapted: Adapted) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    rank = treatment["rank"]
    chosen = targeted(model, component, treatment["targets"])
    described = [lora_module(n, m) for n, m in chosen]
    prefix = checkpoint_prefix(model)
    config = LoraConfig(
        r=rank,
        lora_alpha=treatment["alpha"],
        lora_dropout=treatment["dropout"],
        target_modules=[n[len(prefix):] for n, _ in chosen],
        init_lora_weights="gaussian",
        bias="none",
    )
    inject_adapter_in_model(config, model, adapter_name="default")
    modules = dict(named_modules(model))
    for m in described:
        layer = modules[m.module]
        if abs(layer.scaling["default"] - treatment["scale"]) > 1e-12 * treatment["scale"]:
            raise ValueError(f"{component}.{m.module}: PEFT's scaling {layer.scaling['default']} is not alpha / rank = {treatment['scale']}")
        down = layer.lora_A["default"].weight
        up = layer.lora_B["default"].weight
        with torch.no_grad():
            # Contiguous: the tfjs layout turned back is a strided view, and a strided A costs every step a slower
            # matrix product and a copy of its gradient into its strides (about 3 % of the demo's LoRA step).
            down.data = initial_lora_down(m, rank, seed).to(down.device).contiguous()
            up.data = torch.zeros(up.shape, dtype=torch.float32, device=up.device)
        adapted.trainables.append(Trainable(f"{component}.{m.module}.lora_A.weight", down, component, m.kind))
        adapted.trainables.append(Trainable(f"{component}.{m.module}.lora_B.weight", up, component, m.kind))
    adapted.lora[component] = described
    adapted.groups.append({"name": component, "lr": treatment["lr"], "weightDecay": 0.0})


def train_fully(model: nn.Module, component: str, treatment: dict[str, Any], adapted: Adapted) -> None:
    kinds = layouts(model)
    parameters = dict(named_parameters(model))
    for name in selected_parameters(list(parameters), treatment["only"]):
        parameter = parameters[name]
        parameter.requires_grad_(True)
        adapted.trainables.append(Trainable(f"{component}.{name}", parameter, component, kinds.get(name, "as-is")))
    adapted.groups.append({"name": component, "lr": treatment["lr"], "weightDecay": treatment["weightDecay"]})


class AddedRowsEmbedding(nn.Module):
    """A token embedding table followed by added rows (ids vocab, vocab + 1, … read the rows); the table is the
    pretrained module as it was (frozen, or fully trained), the rows a separate parameter."""

    def __init__(self, table: nn.Embedding, rows: torch.Tensor, trains: bool) -> None:
        super().__init__()
        self.table = table
        self.vocab = table.num_embeddings
        self.rows = nn.Parameter(rows, requires_grad=trains)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        base = self.table(ids.clamp(max=self.vocab - 1))
        added = ids - self.vocab
        extra = F.embedding(added.clamp(min=0, max=self.rows.shape[0] - 1), self.rows.to(base.dtype))
        return torch.where((added >= 0).unsqueeze(-1), extra, base)


def add_token_to_tokenizer(encoder: TextEncoder, spellings: Sequence[str]) -> None:
    """Adds the spellings to the tokenizer; their ids must follow the encoder's table (learned-token.ts's rule)."""
    tokenizer = encoder.tokenizer
    vocab = encoder.model.get_input_embeddings().num_embeddings
    taken = [s for s in spellings if s in tokenizer.get_vocab()]
    if taken:
        raise ValueError(f"{encoder.name}: the tokenizer already has {', '.join(taken)}; choose another token")
    if len(tokenizer) != vocab:
        raise ValueError(f"{encoder.name}: the tokenizer has {len(tokenizer)} ids but the text encoder's table has {vocab} rows")
    tokenizer.add_tokens(list(spellings))
    for i, s in enumerate(spellings):
        got = tokenizer.convert_tokens_to_ids(s)
        if got != vocab + i:
            raise ValueError(f"{encoder.name}: {s} got id {got}, expected {vocab + i}")


def initial_token_rows(encoder: TextEncoder, init: str, vectors: int) -> torch.Tensor:
    ids = encoder.tokenizer(init, add_special_tokens=False).input_ids
    if not ids:
        raise ValueError(f"{encoder.name}: the init word {init!r} has no tokens")
    table = encoder.model.get_input_embeddings().weight.detach().float()
    return table[torch.tensor(ids)].mean(dim=0, keepdim=True).repeat(vectors, 1).clone()


def mean_row_norm(encoder: TextEncoder) -> float:
    return float(encoder.model.get_input_embeddings().weight.detach().float().norm(dim=1).mean())


def set_token_rows(encoder: TextEncoder, rows: torch.Tensor, trains: bool) -> nn.Parameter:
    """Installs `rows` after the encoder's table (tokenizer entries must already be added); returns the parameter."""
    table = encoder.model.get_input_embeddings()
    module = AddedRowsEmbedding(table, rows.to(table.weight.device), trains)
    encoder.model.set_input_embeddings(module)
    return module.rows


def add_token(encoders: Sequence[TextEncoder], token: dict[str, Any], adapted: Adapted) -> None:
    for encoder in encoders:
        rows = initial_token_rows(encoder, token["init"], token["vectors"])
        trains = encoder.name in token["trained"]
        if trains and token["normReprojection"]:
            adapted.token_norms[encoder.name] = mean_row_norm(encoder)
        add_token_to_tokenizer(encoder, token["spellings"])
        parameter = set_token_rows(encoder, rows, trains)
        adapted.token_rows[encoder.name] = parameter
        if trains:
            adapted.trainables.append(Trainable(f"{encoder.name}.{ADDED_TOKEN_EMBEDDING}", parameter, "token", "as-is"))
    adapted.groups.append({"name": "token", "lr": token["lr"], "weightDecay": 0.0})


def adapt(models: dict[str, nn.Module], encoders: Sequence[TextEncoder], adaptation: dict[str, Any], seed: int) -> Adapted:
    """Applies the adaptation to the loaded models (in place); `models` holds every component that trains."""
    adapted = Adapted()
    for component, treatment in adaptation["components"].items():
        if treatment["_tag"] == "frozen":
            continue
        model = models[component]
        if treatment["_tag"] == "full":
            train_fully(model, component, treatment, adapted)
        else:
            add_lora(model, component, treatment, seed, adapted)
    if adaptation.get("token") is not None:
        add_token(encoders, adaptation["token"], adapted)
    return adapted
