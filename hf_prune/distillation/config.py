"""DistillationConfig: what to distil from, and how strongly.

One config serves both Trainer paths (``PruningTrainer(distillation=...)`` and a stock ``Trainer``
with :class:`~hf_prune.distillation.DistillationCallback`), multitask models and recipes. It is
checked when it is built: value ranges, field names (with "did you mean"), and a teacher given as
a path or Hub id that cannot be loaded (a missing folder, a folder without ``config.json``, a Hub
id not in the cache while offline) fail here, before any training. The checks that need the
student (class counts, layer counts, hidden sizes) run when the Trainer is built.

Example:
    >>> from torch import nn
    >>> cfg = DistillationConfig(teacher=nn.Linear(2, 2), alpha=0.7, temperature=4.0)
    >>> cfg.alpha, cfg.temperature, cfg.hidden_weight, cfg.uses_hidden_states
    (0.7, 4.0, 0.0, False)
    >>> DistillationConfig(teacher=nn.Linear(2, 2), temprature=2.0)
    Traceback (most recent call last):
    ...
    hf_prune.errors.InvalidConfigError: Unknown field(s) ['temprature'] for DistillationConfig. 'temprature': did you mean 'temperature'? Valid fields: ['alpha', 'cache_teacher_logits', 'hidden_layers', 'hidden_weight', 'teacher', 'temperature'].
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from torch import nn

from ..config import _ConfigMeta, _type_matches, check_range, describe_type
from ..errors import DataUnavailableError, InvalidConfigError


@dataclass
class DistillationConfig(metaclass=_ConfigMeta):
    """Knowledge distillation from a dense teacher while pruning (or while fine-tuning).

    The training loss of each row is, for a classification head,
    ``(1 - alpha) * CE(student, label) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
    and for a regression head ``(1 - alpha) * (student - label)^2 + alpha * (student - teacher)^2``;
    with ``hidden_weight > 0``, ``hidden_weight`` times the mean squared difference of the chosen
    hidden states (over the row's attended tokens and the hidden size, averaged over the layers) is
    added. The batch loss is the sum over rows divided by the number of labelled rows of the whole
    accumulated batch (the Trainer's ``num_items_in_batch``), so gradient accumulation scales as
    the Trainer's own loss does. Evaluation losses are the task loss alone (comparable with runs
    without distillation).

    Args:
        teacher: The dense fine-tuned teacher: a local folder (``save_pretrained`` / an hf_prune
            export), a Hub id, or a loaded model. For a :class:`~hf_prune.multitask.MultitaskModel`
            student, a dense ``MultitaskModel`` with the same tasks (each task is distilled from
            its own head). It is kept in eval mode, without gradients, on the student's device,
            and is never saved, pruned or optimized.
        alpha: Weight of the distillation term, in [0, 1] (0: the task loss only).
        temperature: Softmax temperature T > 0 of the classification term.
        hidden_weight: Weight (>= 0) of hidden-state matching; 0 turns it off.
        hidden_layers: Which hidden states to match: ``"auto"`` = all of them (the embedding
            output and every layer's output; teacher and student need the same layer count and
            hidden size), or a list of indices into ``hidden_states`` (0 = embeddings, i = layer i).
        cache_teacher_logits: Keep every training row's teacher logits (keyed by the row's tokens,
            so any data order works) and reuse them when the row comes again, instead of running
            the teacher. Off by default: it only pays from the second epoch on (see
            ``benchmarks/results/distillation_overhead.md``); not with hidden-state matching.

    Example:
        >>> # trainer = PruningTrainer(model=model, args=args, train_dataset=ds, pruning=RPPConfig(),
        >>> #                          distillation=DistillationConfig(teacher="outputs/dense"))
    """

    method: ClassVar[str] = "distillation"  # for the shared unknown-field message
    legacy_field_names: ClassVar[dict[str, str]] = {}
    field_hints: ClassVar[dict[str, str]] = {
        "teacher_model": "use 'teacher' (a path, a Hub id or a loaded model)",
        "T": "use 'temperature'",
        "weight": "use 'alpha' for the distillation term, 'hidden_weight' for hidden-state matching",
        "beta": "use 'hidden_weight' for hidden-state matching",
    }

    teacher: str | nn.Module = field(metadata={"help": "Dense teacher: local folder, Hub id or loaded model."})
    alpha: float = field(default=0.5, metadata={"help": "Weight of the distillation term, in [0, 1]."})
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T > 0 (classification)."})
    hidden_weight: float = field(default=0.0, metadata={"help": "Weight of hidden-state matching (0: off)."})
    hidden_layers: Literal["auto"] | list[int] = field(
        default="auto", metadata={"help": "'auto' (all hidden states) or indices into hidden_states."}
    )
    cache_teacher_logits: bool = field(
        default=False, metadata={"help": "Reuse each training row's teacher logits when the row comes again."}
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "hidden_layers" and isinstance(value, tuple):
                value = list(value)
                self.hidden_layers = value
            if not _type_matches(value, hints[item.name]):
                raise InvalidConfigError(
                    f"DistillationConfig.{item.name}={value!r} has type {type(value).__name__}, expected "
                    f"{describe_type(hints[item.name])}."
                )
        check_range("alpha", self.alpha, 0.0, 1.0)
        check_range("temperature", self.temperature, 0.0, float("inf"), low_inclusive=False, high_inclusive=False)
        check_range("hidden_weight", self.hidden_weight, 0.0, float("inf"), high_inclusive=False)
        self._check_hidden_layers()
        if self.cache_teacher_logits and self.uses_hidden_states:
            raise InvalidConfigError(
                "cache_teacher_logits=True with hidden_weight > 0: only logits are cached (a row's hidden states "
                "would take the teacher's whole activation memory); turn one of them off."
            )
        if isinstance(self.teacher, str):
            check_teacher_source(self.teacher)

    def _check_hidden_layers(self) -> None:
        layers = self.hidden_layers
        if isinstance(layers, list):
            if not layers:
                raise InvalidConfigError(
                    "hidden_layers=[] names no hidden state; list indices into hidden_states (0 = embeddings, "
                    "i = layer i), or use 'auto' for all of them."
                )
            bad = [index for index in layers if index < 0]
            if bad or len(set(layers)) != len(layers):
                raise InvalidConfigError(
                    f"hidden_layers={layers!r}: indices must be distinct and >= 0 (0 = embeddings, i = layer i)."
                )
            if self.hidden_weight == 0:
                raise InvalidConfigError(
                    f"hidden_layers={layers!r} has no effect with hidden_weight=0; set hidden_weight > 0 (e.g. 1.0) "
                    f"to match hidden states, or drop hidden_layers."
                )

    @property
    def uses_hidden_states(self) -> bool:
        """Whether hidden states are matched (``hidden_weight > 0``)."""
        return self.hidden_weight > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (a loaded teacher model appears as its class name and source).

        Example:
            >>> DistillationConfig(teacher=nn.Identity(), alpha=0.3).to_dict()["teacher"]
            '<Identity>'
        """
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["teacher"] = teacher_description(self.teacher)
        return data


def teacher_description(teacher: str | nn.Module) -> str:
    """A teacher as text: its path or Hub id, or ``<Class from source>`` for a loaded model."""
    if isinstance(teacher, str):
        return teacher
    source = getattr(getattr(teacher, "config", None), "_name_or_path", "") or ""
    return f"<{type(teacher).__name__}{' from ' + source if source else ''}>"


def check_teacher_source(teacher: str) -> str:
    """The loadable path of a teacher given as a path or Hub id, or an error naming it and the fix.

    Only local checks, nothing is downloaded (see :func:`hf_prune.pretrained.check_model_available`).

    Example:
        >>> import os, tempfile
        >>> check_teacher_source(os.path.join(tempfile.mkdtemp(), "dense"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        hf_prune.errors.DataUnavailableError: DistillationConfig.teacher: model '.../dense': the local folder ... does not exist; ...
    """
    from ..pretrained import check_model_available

    if not teacher.strip():
        raise InvalidConfigError(
            "DistillationConfig.teacher is empty; give the dense fine-tuned teacher's folder or Hub id, or the model."
        )
    try:
        return check_model_available(teacher)
    except DataUnavailableError as err:
        raise DataUnavailableError(f"DistillationConfig.teacher: {err}") from None
