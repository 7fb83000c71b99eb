"""The contract tester: a table of tiny models x a table of methods, and the checks every method passes.

Modelled on peft's ``PeftCommonTester`` (peft ``tests/testing_common.py``): the tables say *what*
is tested, :class:`ContractTester` says *what must hold*, and ``tests/test_contract.py`` crosses
them with ``pytest.mark.parametrize``. Nothing here names a method by hand: the method table is
derived from :func:`hf_prune.available_methods`, each method's export formats from the format
registry (``method.export_formats``), so a method registered later gets every contract test.
:data:`TINY_RUN_OVERRIDES` only adds the settings a 10-step run on a 2-layer model needs.

Also the shared helpers of the other test files: the tiny model factories, the learnable tiny
dataset, ``training_args``, building a ``PruningTrainer`` or a stock ``Trainer`` + callback, and a
plain training loop for driving a method without a Trainer.

Example (what a contract looks like from a test)::

    tester = ContractTester(tmp_folder)                   # the session's: conftest's contract_tester
    run = tester.trained(METHODS["magnitude"], "bert")    # trained once per session, then exported
    tester.check_saved_sparsity(run, "compact")
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import transformers
from datasets import Dataset
from torch import nn
from transformers import (
    CONFIG_MAPPING,
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    MPNetConfig,
    MPNetForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    Trainer,
    TrainingArguments,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_prune import (
    FrozenMaskConfig,
    MagnitudeConfig,
    PruningCallback,
    PruningConfig,
    PruningTrainer,
    available_methods,
    create_method,
    load_pruned,
    read_report,
    save_pruned,
)
from hf_prune.factorization import FactorizedLinear
from hf_prune.formats import formats_for, get_format
from hf_prune.multitask import MultitaskModel, TaskHead
from hf_prune.registry import get_config_class, get_method_class
from hf_prune.state_dicts import flatten_state

VOCAB = 100
SEQ = 12
HIDDEN = 32
LAYERS = 2


# =========================================================================== data and arguments
def tiny_dataset(n: int = 64, seed: int = 0) -> Dataset:
    """Token sequences whose label is whether token 7 appears: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (n, SEQ), generator=generator)
    ids[: n // 2, 3] = 7
    labels = (ids == 7).any(dim=1).long()
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n, "labels": labels.tolist()})


def tiny_multitask_dataset(n: int = 64, seed: int = 0) -> Dataset:
    """:func:`tiny_dataset` with a ``task_ids`` column alternating between the two tasks of
    :func:`tiny_multitask` (its labels 0/1 fit both heads), so batches mix tasks."""
    return tiny_dataset(n, seed).add_column("task_ids", [i % 2 for i in range(n)])


def training_args(output_dir: str | os.PathLike[str], **overrides: Any) -> TrainingArguments:
    """CPU ``TrainingArguments`` for the tiny runs: no reporting, no progress bars, no workers."""
    defaults: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        max_steps=20,
        seed=0,
        report_to="none",
        save_strategy="no",
        logging_steps=5,
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    defaults.update(overrides)
    return TrainingArguments(**defaults)


def input_ids(seed: int = 1, batch: int = 3, length: int = 10) -> torch.Tensor:
    """A fixed batch of token ids to compare models' outputs on."""
    return torch.randint(3, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def logits(model: nn.Module, ids: torch.Tensor | None = None) -> torch.Tensor:
    """The model's logits on ``ids`` (default :func:`input_ids`) in eval mode."""
    model.eval()
    ids = input_ids() if ids is None else ids
    if isinstance(model, MultitaskModel):  # every task's logits on the batch, side by side
        return torch.cat(
            [
                model(input_ids=ids, attention_mask=torch.ones_like(ids), task_ids=torch.full((len(ids),), t)).logits
                for t in range(len(model.task_names))
            ],
            dim=-1,
        )
    return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def batch_loss(model: nn.Module, seed: int = 0) -> torch.Tensor:
    """A training loss on a small random batch (for loops that drive a method without a Trainer)."""
    ids = torch.randint(3, VOCAB, (4, 8), generator=torch.Generator().manual_seed(seed))
    return model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss


def train_steps(
    model: nn.Module,
    method: Any,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    on_step: Callable[[int], None] | None = None,
    begin: bool = True,
) -> torch.optim.Optimizer:
    """A plain PyTorch loop (AdamW): ``steps`` optimizer steps, ``method.step`` after each.

    Calls ``method.begin(steps)`` first (as the Trainer integration does) unless ``begin=False``
    (a method :func:`attached` already began); ``on_step(step)`` runs after each method step.
    Returns the optimizer.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if begin:
        method.begin(steps)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        optimizer.step()
        method.step(step, optimizer)
        if on_step is not None:
            on_step(step)
    return optimizer


def attached(config: PruningConfig, total_steps: int | None = 100, seed: int = 0, model: nn.Module | None = None):
    """``(model, method)``: a method of ``config`` attached to ``model`` (default a tiny BERT of
    ``seed``) and begun for ``total_steps`` (not begun when ``None``)."""
    model = model if model is not None else tiny_bert(seed)
    method = create_method(config)
    method.attach(model)
    if total_steps is not None:
        method.begin(total_steps)
    return model, method


# =========================================================================== tiny models
def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build()


_COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    num_labels=2,
)


def tiny_bert(seed: int = 0, num_layers: int = LAYERS) -> BertForSequenceClassification:
    return _seeded(lambda: BertForSequenceClassification(BertConfig(**_COMMON, num_hidden_layers=num_layers)), seed)


MULTITASK_HEADS = (TaskHead("sentiment", ("negative", "positive")), TaskHead("topic", ("a", "b", "c")))


def tiny_multitask(seed: int = 0) -> MultitaskModel:
    """A tiny BERT encoder shared by two heads of different widths (2 and 3 classes)."""
    config = BertConfig(**_COMMON, num_hidden_layers=LAYERS)
    return _seeded(lambda: MultitaskModel.from_encoder_config(config, MULTITASK_HEADS), seed)


def tiny_roberta(seed: int = 0) -> RobertaForSequenceClassification:
    return _seeded(lambda: RobertaForSequenceClassification(RobertaConfig(**_COMMON, num_hidden_layers=LAYERS)), seed)


def tiny_distilbert(seed: int = 0) -> DistilBertForSequenceClassification:
    config = DistilBertConfig(
        vocab_size=VOCAB,
        dim=HIDDEN,
        n_layers=LAYERS,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    return _seeded(lambda: DistilBertForSequenceClassification(config), seed)


def tiny_electra(seed: int = 0) -> ElectraForSequenceClassification:
    # embedding_size < hidden_size: ELECTRA's embeddings_project must not become a target.
    config = ElectraConfig(**_COMMON, num_hidden_layers=LAYERS, embedding_size=16)
    return _seeded(lambda: ElectraForSequenceClassification(config), seed)


def tiny_deberta_v2(seed: int = 0) -> DebertaV2ForSequenceClassification:
    config = DebertaV2Config(**_COMMON, num_hidden_layers=LAYERS, pooler_hidden_size=HIDDEN)
    return _seeded(lambda: DebertaV2ForSequenceClassification(config), seed)


def tiny_mpnet(seed: int = 0) -> MPNetForSequenceClassification:
    return _seeded(lambda: MPNetForSequenceClassification(MPNetConfig(**_COMMON, num_hidden_layers=LAYERS)), seed)


def tiny_albert(seed: int = 0) -> AlbertForSequenceClassification:
    # ALBERT shares one layer across the depth: 2 layers run the same 6 Linear modules.
    config = AlbertConfig(**_COMMON, num_hidden_layers=LAYERS, embedding_size=16)
    return _seeded(lambda: AlbertForSequenceClassification(config), seed)


def tiny_xlm_roberta(seed: int = 0) -> XLMRobertaForSequenceClassification:
    config = XLMRobertaConfig(**_COMMON, num_hidden_layers=LAYERS)
    return _seeded(lambda: XLMRobertaForSequenceClassification(config), seed)


def tiny_modernbert(seed: int = 0) -> ModernBertForSequenceClassification:
    # Fused Wqkv, gated MLP (Wi is 32 -> 128), no biases; special token ids must fit the vocab.
    config = ModernBertConfig(
        **_COMMON,
        num_hidden_layers=LAYERS,
        global_attn_every_n_layers=1,
        local_attention=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
    )
    return _seeded(lambda: ModernBertForSequenceClassification(config), seed)


# --------------------------------------------------------------------------- a model not in transformers
class TinyCustomConfig(PretrainedConfig):
    """Config of :class:`TinyCustomForSequenceClassification`, a ``model_type`` transformers does not know."""

    model_type = "hf-prune-test-encoder"

    def __init__(
        self,
        vocab_size: int = VOCAB,
        hidden_size: int = HIDDEN,
        num_hidden_layers: int = LAYERS,
        intermediate_size: int = 64,
        max_position_embeddings: int = 64,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        super().__init__(**kwargs)


class TinyCustomAttention(nn.Module):
    """Single-head self-attention from four ``nn.Linear`` (named so hf_prune groups it as attention)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query, self.key, self.value, self.output = (nn.Linear(hidden, hidden) for _ in range(4))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.query(hidden) @ self.key(hidden).transpose(-1, -2) / math.sqrt(hidden.shape[-1])
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        return self.output(scores.softmax(-1) @ self.value(hidden))


class TinyCustomLayer(nn.Module):
    def __init__(self, config: TinyCustomConfig) -> None:
        super().__init__()
        self.attention = TinyCustomAttention(config.hidden_size)
        self.norm1 = nn.LayerNorm(config.hidden_size)
        self.ffn_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm2 = nn.LayerNorm(config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.norm1(hidden + self.attention(hidden, mask))
        return self.norm2(hidden + self.ffn_out(torch.relu(self.ffn_in(hidden))))


class TinyCustomEncoder(nn.Module):
    """The backbone (``model.base_model``): embeddings and a stack of layers, a plain ``nn.Module``."""

    def __init__(self, config: TinyCustomConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(TinyCustomLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask.bool())
        return hidden


class TinyCustomForSequenceClassification(PreTrainedModel):
    """A ``PreTrainedModel`` subclass that is not in transformers (own config, own ``model_type``).

    Exports record its class and module (``tests.common``), so every format must load it back.
    """

    config_class = TinyCustomConfig
    base_model_prefix = "encoder"

    def __init__(self, config: TinyCustomConfig) -> None:
        super().__init__(config)
        self.encoder = TinyCustomEncoder(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.word_embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        logits = self.classifier(self.encoder(input_ids, mask)[:, 0])
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def tiny_custom(seed: int = 0) -> TinyCustomForSequenceClassification:
    return _seeded(lambda: TinyCustomForSequenceClassification(TinyCustomConfig(num_labels=2)), seed)


@dataclass(frozen=True)
class ModelCase:
    """One architecture users bring: a factory of a tiny randomly initialised model (``seed=``
    keyword), and how many attention and feed-forward ``nn.Linear`` targets hf_prune should find
    in it by default (2 layers)."""

    name: str
    build: Callable[..., nn.Module]
    attention_targets: int = 8  # Q, K, V, output per layer
    ffn_targets: int = 4  # in, out per layer


# Tried and not in the table (find_targets works on each, but they repeat a layout already here,
# so they would only add run time): DeBERTa v1 (fused in_proj, like ModernBERT's Wqkv), CamemBERT
# (XLM-RoBERTa's classes), ERNIE, RoFormer, Data2VecText, Nystromformer, MegatronBERT (BERT's
# layout), ConvBERT and MobileBERT (BERT's layout plus conv / bottleneck Linears).
MODELS: dict[str, ModelCase] = {
    case.name: case
    for case in (
        ModelCase("bert", tiny_bert),
        ModelCase("roberta", tiny_roberta),
        ModelCase("distilbert", tiny_distilbert),
        ModelCase("electra", tiny_electra),
        ModelCase("deberta-v2", tiny_deberta_v2),
        ModelCase("mpnet", tiny_mpnet),
        # One layer shared across the depth: its 6 Linears once.
        ModelCase("albert", tiny_albert, attention_targets=4, ffn_targets=2),
        ModelCase("xlm-roberta", tiny_xlm_roberta),
        # Fused Wqkv + Wo, gated Wi + Wo per layer.
        ModelCase("modernbert", tiny_modernbert, attention_targets=4, ffn_targets=4),
        ModelCase("custom", tiny_custom),
        # One BERT encoder shared by two task heads; only the encoder is pruned.
        ModelCase("multitask", tiny_multitask),
    )
}


# =========================================================================== methods
# What a 10-step run on a 2-layer model needs beyond each config's defaults. A method missing here
# runs with its defaults (schedules are fractions of the run, so they fit any length).
TINY_RUN_OVERRIDES: dict[str, dict[str, Any]] = {
    "rpp": dict(target_sparsity=0.75, reweight_interval=2),
    "magnitude": dict(target_sparsity=0.75, prune_interval=1),
    "movement": dict(target_sparsity=0.75, score_learning_rate=0.05),
    "rank": dict(target_params_fraction=0.4, gate_learning_rate=0.2, lagrangian_learning_rate=0.1),
}
# Methods that prune nothing themselves but keep the zeros a model already has: they start from a
# model with this fraction of every target matrix zeroed (one-shot magnitude pruning).
START_SPARSITY: dict[str, float] = {"frozen": 0.5}


@dataclass(frozen=True)
class MethodCase:
    """A registered method, its tiny-run config and the formats it declares."""

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    start_sparsity: float | None = None

    @property
    def config_class(self) -> type[PruningConfig]:
        return get_config_class(self.name)

    @property
    def structure(self) -> str:
        return get_method_class(self.name).weight_structure

    @property
    def formats(self) -> list[str]:
        return formats_for(self.structure)

    def config(self) -> PruningConfig:
        return self.config_class(**self.overrides)

    def model(self, arch: str, seed: int = 0, root: str | os.PathLike[str] | None = None) -> nn.Module:
        """A fresh model of ``arch``, with the zeros this method expects to start from.

        With ``root`` it is saved there and loaded back with ``from_pretrained``, as users get
        pretrained models: its config then names where it came from (formats that record the base
        model, like ``masks``, need that).
        """
        model = MODELS[arch].build(seed=seed)
        if root is not None:
            folder = os.path.join(os.fspath(root), f"base-{arch}-{seed}")
            if not os.path.isdir(folder):
                model.save_pretrained(folder)
            model = type(model).from_pretrained(folder)
        if self.start_sparsity is not None:
            magnitude_pruned(model, self.start_sparsity)
        return model


METHODS: dict[str, MethodCase] = {
    name: MethodCase(name, TINY_RUN_OVERRIDES.get(name, {}), START_SPARSITY.get(name)) for name in available_methods()
}
# Formats whose folders load with plain ``from_pretrained`` (the format's promise, checked on every model).
PLAIN_FROM_PRETRAINED_FORMATS = {"dense"}
METHOD_FORMATS: list[tuple[str, str]] = [(name, fmt) for name, case in METHODS.items() for fmt in case.formats]


def magnitude_pruned(model: nn.Module | None = None, sparsity: float = 0.9, **config: Any):
    """Zero ``sparsity`` of every target matrix of ``model`` (default a tiny BERT) by magnitude, at once.

    Returns ``(model, method)``; the model has plain weights with exact zeros (nothing attached
    stays on it), like one loaded from an export.
    """
    model = model if model is not None else tiny_bert()
    method = create_method(MagnitudeConfig(target_sparsity=sparsity, begin_step=0, end_step=1, **config))
    method.attach(model)
    method.begin(1)
    method.step(1)
    return model, method


# =========================================================================== Trainer runs
def make_trainer(path, model: nn.Module, dataset: Dataset, config: Any, use_callback: bool, **arg_overrides: Any):
    """``(trainer, method)``: a ``PruningTrainer``, or a stock ``Trainer`` + ``PruningCallback``."""
    args = training_args(path, **arg_overrides)
    if use_callback:
        callback = PruningCallback(config)
        return Trainer(model=model, args=args, train_dataset=dataset, callbacks=[callback]), callback.method
    trainer = PruningTrainer(model=model, args=args, train_dataset=dataset, pruning=config)
    return trainer, trainer.pruning_method


def frozen_mask_trainer(path, model: nn.Module, dataset: Dataset, steps: int = 6, **arg_overrides: Any):
    """A ``PruningTrainer`` fine-tuning ``model`` with ``FrozenMaskConfig``, hard on the zeros
    (high learning rate and weight decay: a zero that is not held would move)."""
    args = dict(max_steps=steps, learning_rate=1e-2, weight_decay=0.1, logging_steps=steps)
    args.update(arg_overrides)
    return PruningTrainer(
        model=model, args=training_args(path, **args), train_dataset=dataset, pruning=FrozenMaskConfig()
    )


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state dict (parametrization originals included)."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def method_state(method: Any) -> dict[str, torch.Tensor]:
    """The method's resume tensors, flattened and copied (masks, scores, gates, its optimizer)."""
    tensors, _ = method.state_dict()
    return {key: value.detach().clone() for key, value in flatten_state(tensors).items()}


def assert_states_equal(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str) -> None:
    """Same keys and bit-identical tensors (zeros first, for a clearer message): the two Trainer
    paths, and an interrupted + resumed run, do the same float operations in the same order."""
    assert sorted(actual) == sorted(expected), what
    for key, value in expected.items():
        other = actual[key]
        if value.is_floating_point():
            assert torch.equal(other == 0, value == 0), f"{what}: zeros differ in {key}"
            torch.testing.assert_close(other, value, rtol=0, atol=0, msg=lambda m, key=key: f"{what}: {key}: {m}")
        else:
            assert torch.equal(other, value), f"{what}: {key}"


@dataclass
class TrainedRun:
    """A finished ``PruningTrainer`` run of one method on one model, and its exports."""

    case: MethodCase
    arch: str
    folder: str
    trainer: Any
    method: Any
    model_state: dict[str, torch.Tensor]  # right after training, before any export
    method_state: dict[str, torch.Tensor]
    start_zeros: dict[str, torch.Tensor] | None = None  # frozen: the zeros the model started with
    exports: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # format -> (folder, report)
    logits: torch.Tensor | None = None  # of the exported (materialized) model


# =========================================================================== the contracts
class ContractTester:
    """The checks every registered method must pass, on tiny CPU models.

    One instance per session (the ``contract_tester`` fixture of ``tests/conftest.py``) caches the
    trained runs, so contracts that only read a finished run share its training.

    Args:
        root: Folder for the runs, checkpoints and exports.
        steps: Optimizer steps per run.
        save_steps: Checkpoint interval of runs used for the resume contracts (mid-schedule and
            after the freeze with the default schedule fractions 0.1-0.7).
    """

    RESUME_ARCH = "bert"

    def __init__(self, root: str | os.PathLike[str], steps: int = 10, save_steps: int = 4) -> None:
        self.root = os.fspath(root)
        self.steps = steps
        self.save_steps = save_steps
        self.dataset = tiny_dataset()
        self.multitask_dataset = tiny_multitask_dataset()
        self._runs: dict[tuple[str, str, bool], TrainedRun] = {}
        self._fine_tuned: dict[tuple[str, str, str], tuple[nn.Module, Any, dict[str, int]]] = {}

    # ----------------------------------------------------------------------- runs (cached)
    def dataset_for(self, arch: str) -> Dataset:
        """The training data of ``arch`` (the multitask model's rows carry task ids)."""
        return self.multitask_dataset if arch == "multitask" else self.dataset

    def run_args(self, arch: str) -> dict[str, Any]:
        args: dict[str, Any] = dict(max_steps=self.steps, logging_steps=self.save_steps)
        if arch == self.RESUME_ARCH:  # its runs are the uninterrupted runs of the resume contract
            args.update(save_strategy="steps", save_steps=self.save_steps)
        return args

    def trained(self, case: MethodCase, arch: str, use_callback: bool = False) -> TrainedRun:
        """A finished run of ``case`` on ``arch`` (trained once, then cached); the PruningTrainer
        run is also exported to every format the method declares."""
        key = (case.name, arch, use_callback)
        if key in self._runs:
            return self._runs[key]
        folder = os.path.join(self.root, f"{case.name}-{arch}-{'callback' if use_callback else 'trainer'}")
        model = case.model(arch, root=self.root)
        start_zeros = None
        if case.start_sparsity is not None:
            start_zeros = {name: weight == 0 for name, weight in model_state(model).items()}
        trainer, method = make_trainer(
            os.path.join(folder, "run"),
            model,
            self.dataset_for(arch),
            case.config(),
            use_callback,
            **self.run_args(arch),
        )
        trainer.train()
        run = TrainedRun(case, arch, folder, trainer, method, model_state(model), method_state(method), start_zeros)
        if not use_callback:
            for fmt in case.formats:
                out = os.path.join(folder, fmt)
                run.exports[fmt] = (out, trainer.save_pruned(out, format=fmt))
            run.logits = logits(model)
        self._runs[key] = run
        return run

    def resumed(self, case: MethodCase, use_callback: bool, checkpoint_step: int) -> tuple[TrainedRun, Any, Any]:
        """``(uninterrupted run, trainer, method)`` of a run resumed from the uninterrupted run's
        checkpoint at ``checkpoint_step``, on a fresh model of another seed (so everything must
        come from the checkpoint)."""
        full = self.trained(case, self.RESUME_ARCH, use_callback)
        checkpoint = f"checkpoint-{checkpoint_step}"
        # A fresh output_dir holding only that checkpoint: the callback finds its state there.
        output_dir = os.path.join(full.folder, f"resume-{checkpoint_step}")
        shutil.copytree(os.path.join(full.folder, "run", checkpoint), os.path.join(output_dir, checkpoint))
        model = case.model(self.RESUME_ARCH, seed=1)
        trainer, method = make_trainer(
            output_dir, model, self.dataset, case.config(), use_callback, **self.run_args(self.RESUME_ARCH)
        )
        trainer.train(resume_from_checkpoint=os.path.join(output_dir, checkpoint))
        return full, trainer, method

    # ----------------------------------------------------------------------- contracts
    def check_saved_sparsity(self, run: TrainedRun, fmt: str) -> None:
        """The target is met in the saved file, read back by ``load_pruned`` and checked against
        the report: element-wise methods per matrix (the mask exactly at the target, every masked
        weight 0; or, for methods that keep a model's zeros, exactly the zeros it started with);
        factored methods within their parameter budget (factor sizes, or the rank of the
        multiplied-out matrices in a dense export)."""
        folder, report = run.exports[fmt]
        assert read_report(folder) == json.loads(json.dumps(report))  # the report on disk is the one returned
        assert report["method"] == run.case.name and report["format"] == fmt
        loaded = load_pruned(folder)
        names = report["pruned_weights"]
        assert names, "the report names no pruned weight"
        if run.case.structure == "elementwise":
            self._check_elementwise_file(run, loaded, report, names)
        else:
            self._check_factored_file(run, loaded, report, names, fmt)

    def _check_elementwise_file(self, run: TrainedRun, loaded: nn.Module, report, names) -> None:
        assert report["sparsity_kind"] == "zeros"
        state = loaded.state_dict()
        target = getattr(run.method.config, "target_sparsity", None)
        for name in names:
            weight = state[name]
            zeros = int((weight == 0).sum())
            assert report["saved_sparsity_per_matrix"][name] == zeros / weight.numel(), name
            if run.start_zeros is not None:
                # keeps every zero it started with, and prunes nothing new
                assert bool((weight[run.start_zeros[name]] == 0).all()), name
                assert zeros == int(run.start_zeros[name].sum()), name
            else:
                assert target is not None, f"{run.case.name}: add its target to TINY_RUN_OVERRIDES"
                # At least the target in the file; the mask itself is exact. (A weight the mask
                # keeps may still be 0: RPP's projection re-admits zeros when the proximal steps
                # overshot, and a weight without gradient stays 0; see its readmitted_zeros.)
                assert zeros >= round(target * weight.numel()), (name, zeros / weight.numel(), target)
                pruned = getattr(run.method, "pruned", {}).get(name.removesuffix(".weight"))
                if pruned is not None:
                    assert int(pruned.sum()) == round(target * weight.numel()), name
                    assert bool((weight[pruned] == 0).all()), name
        total = sum(state[n].numel() for n in names)
        assert report["saved_sparsity"] == pytest.approx(sum(int((state[n] == 0).sum()) for n in names) / total)

    def _check_factored_file(self, run: TrainedRun, loaded: nn.Module, report, names, fmt: str) -> None:
        budget = getattr(run.method.config, "target_params_fraction", None)
        assert budget is not None, f"{run.case.name}: teach _check_factored_file where its budget is"
        stored = dense = 0
        for name in names:
            module = loaded.get_submodule(name.removesuffix(".weight"))
            if isinstance(module, FactorizedLinear):
                kept = module.rank * (module.in_features + module.out_features)
                size = module.in_features * module.out_features
            else:
                weight = module.weight.detach()
                size = weight.numel()
                # A dense export multiplies the factors out: its rank is what the factors held.
                rank = int(torch.linalg.matrix_rank(weight.double(), rtol=1e-6))
                kept = min(rank * sum(weight.shape), size)
            stored, dense = stored + kept, dense + size
        assert stored <= budget * dense, (stored, dense, budget)
        if fmt == "factored":
            assert report["sparsity_kind"] == "parameters_removed"
            assert report["saved_sparsity"] == pytest.approx(1 - stored / dense)
            assert any(isinstance(m, FactorizedLinear) for m in loaded.modules()), "nothing was factored"

    def check_export_loads_back(self, run: TrainedRun, fmt: str) -> None:
        """``load_pruned`` gives the saved model's class, in eval mode, with the same outputs; a
        format that holds only the pattern gives the base model's weights with that pattern."""
        folder, report = run.exports[fmt]
        loaded = load_pruned(folder)
        assert type(loaded) is type(run.trainer.model), type(loaded)
        assert not loaded.training
        if not get_format(fmt).holds_weights:
            base = run.case.model(run.arch, root=self.root).state_dict()
            state, exported = loaded.state_dict(), run.trainer.model.state_dict()  # materialized by the exports
            for name in report["pruned_weights"]:
                kept = exported[name] != 0
                torch.testing.assert_close(state[name], base[name] * kept, atol=0, rtol=0)
            return
        torch.testing.assert_close(logits(loaded), run.logits, atol=1e-5, rtol=0)
        if fmt in PLAIN_FROM_PRETRAINED_FORMATS:
            # No hf_prune needed: the Auto class for transformers' models, the class itself otherwise.
            known = loaded.config.model_type in CONFIG_MAPPING and hasattr(transformers, type(loaded).__name__)
            plain = (AutoModelForSequenceClassification if known else type(loaded)).from_pretrained(folder)
            torch.testing.assert_close(logits(plain), run.logits, atol=1e-5, rtol=0)

    def check_task_exports(self, run: TrainedRun, fmt: str) -> None:
        """A multitask export holds one export per task under ``tasks/``: each loads by itself as
        the architecture's stock sequence-classification model (dense: with plain
        ``AutoModelForSequenceClassification``), gives that task's outputs of the multitask model,
        and holds encoder weights bit-identical to every other task's."""
        folder, report = run.exports[fmt]
        model = run.trainer.model
        assert sorted(report["tasks"]) == sorted(model.task_names)
        ids = input_ids()
        encoders = {}
        for task_id, name in enumerate(model.task_names):
            sub = os.path.join(folder, report["tasks"][name]["folder"])
            loaded = load_pruned(sub)
            assert type(loaded) is BertForSequenceClassification
            if fmt in PLAIN_FROM_PRETRAINED_FORMATS:
                loaded = AutoModelForSequenceClassification.from_pretrained(sub).eval()
                assert type(loaded) is BertForSequenceClassification
            expected = model(input_ids=ids, attention_mask=torch.ones_like(ids), task_ids=torch.full((3,), task_id))
            torch.testing.assert_close(logits(loaded, ids), expected.logits, atol=1e-5, rtol=0)
            encoders[name] = {k: v for k, v in loaded.state_dict().items() if k.startswith("bert.")}
            task_report = read_report(sub)
            assert task_report["task"] == name and task_report["saved_sparsity"] == report["saved_sparsity"]
        first, *others = encoders.values()
        for other in others:
            assert_states_equal(other, first, "encoder weights of two tasks")

    def check_config_round_trip(self, run: TrainedRun) -> None:
        """The config survives ``to_dict`` -> JSON -> ``from_dict``, and every export holds it."""
        config = run.case.config()
        again = PruningConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config and type(again) is type(config)
        for folder, _ in run.exports.values():
            assert PruningConfig.load(folder) == config, folder

    def check_frozen_fine_tune_keeps_zeros(self, run: TrainedRun, fmt: str) -> None:
        """A loaded export fine-tuned with ``FrozenMaskConfig`` keeps every zero, through a
        second export of the same format."""
        folder, report = run.exports[fmt]
        model = load_pruned(folder)
        names = report["pruned_weights"]
        before = {n: model.state_dict()[n].clone() for n in names}
        trainer = frozen_mask_trainer(os.path.join(run.folder, f"finetune-{fmt}"), model, self.dataset)
        trainer.train()
        after = model.state_dict()
        for name in names:
            assert bool((after[name][before[name] == 0] == 0).all()), f"a zero of {name} moved"
        assert any(not torch.equal(before[n], after[n]) for n in names), "fine-tuning changed nothing"
        out = os.path.join(run.folder, f"finetune-{fmt}-export")
        again = trainer.save_pruned(out, format=fmt)
        for name in names:
            assert again["saved_sparsity_per_matrix"][name] >= report["saved_sparsity_per_matrix"][name], name
        if get_format(fmt).holds_weights:
            torch.testing.assert_close(logits(load_pruned(out)), logits(model), atol=1e-5, rtol=0)

    def fine_tuned_factored(self, run: TrainedRun, fmt: str) -> tuple[nn.Module, Any, dict[str, int]]:
        """``(model, trainer, ranks before)``: the ``fmt`` export of ``run`` loaded and fine-tuned
        with ``FrozenMaskConfig`` (the fine-tuning path for pruned models); cached."""
        key = (run.case.name, run.arch, f"finetune-{fmt}")
        if key not in self._fine_tuned:
            model = load_pruned(run.exports[fmt][0])
            ranks = factored_ranks(model)
            assert ranks, "the export holds no factored layer"
            before = model_state(model)
            trainer = frozen_mask_trainer(os.path.join(run.folder, f"finetune-{fmt}"), model, self.dataset)
            trainer.train()
            changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
            assert changed, "fine-tuning changed nothing"
            self._fine_tuned[key] = (model, trainer, ranks)
        return self._fine_tuned[key]

    def check_fine_tune_keeps_factors(self, run: TrainedRun, fmt: str) -> None:
        """Fine-tuning a loaded factored export keeps every factored layer at its rank."""
        model, _, ranks = self.fine_tuned_factored(run, fmt)
        assert factored_ranks(model) == ranks

    def check_fine_tuned_factors_export_again(self, run: TrainedRun, fmt: str, out_fmt: str) -> None:
        """The fine-tuned factored model exports again in ``out_fmt`` and loads back with equal
        outputs (and its ranks, where ``out_fmt`` keeps factors)."""
        model, trainer, ranks = self.fine_tuned_factored(run, fmt)
        out = os.path.join(run.folder, f"finetune-{fmt}-export-{out_fmt}")
        save_pruned(model, out, trainer.pruning_method, format=out_fmt)
        loaded = load_pruned(out)
        if out_fmt not in formats_for("elementwise"):  # a format that keeps factors
            assert factored_ranks(loaded) == ranks
        torch.testing.assert_close(logits(loaded), logits(model), atol=1e-5, rtol=0)


def factored_ranks(model: nn.Module) -> dict[str, int]:
    """Module name -> rank of every FactorizedLinear in ``model``."""
    return {name: module.rank for name, module in model.named_modules() if isinstance(module, FactorizedLinear)}
