"""Task mixtures and the batch sampler that draws multitask training batches from them.

The training set is the concatenation of the task datasets in ``task_sizes`` order; the sampler
yields lists of *global* indices into it (task ``k``'s rows start at the sum of the sizes before
it). A :class:`TaskMixture` says how often each task is drawn: in proportion to its size, to its
size to the power ``1/T`` (temperature, jiant style, optionally with a size cap), uniformly, or
by explicit weights.

Example:
    >>> from hf_prune.multitask.sampling import MultitaskBatchSampler, TaskMixture
    >>> mixture = TaskMixture(sampling="temperature", temperature=2.0, size_cap=400)
    >>> {task: round(p, 3) for task, p in mixture.probabilities({"big": 900, "small": 100}).items()}
    {'big': 0.667, 'small': 0.333}
    >>> sampler = MultitaskBatchSampler({"big": 900, "small": 100}, batch_size=4, mixture=mixture, seed=0)
    >>> len(sampler)  # one epoch: ceil((min(900, 400) + 100) / 4) batches
    125
    >>> batch = next(iter(sampler))
    >>> len(batch), len({sampler.task_of(i) for i in batch})  # homogeneous: one task per batch
    (4, 1)
"""

from __future__ import annotations

import bisect
import difflib
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, cast, get_args

import numpy as np
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import DataLoader, Sampler

from ..errors import InvalidConfigError

logger = logging.getLogger(__name__)

SamplingName = Literal["proportional", "temperature", "uniform"]
BatchesName = Literal["homogeneous", "mixed"]

__all__ = ["MultitaskBatchSampler", "TaskMixture", "prepared_train_dataloader"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _unknown_keys_message(unknown: list[str], known: list[str], what: str) -> str:
    """The error message for names that are not TaskMixture fields (``what``: "key" of a dict, "argument").

    Example:
        >>> _unknown_keys_message(["temprature"], ["sampling", "temperature"], "argument")
        "Unknown TaskMixture argument(s) ['temprature'] ('temprature': did you mean 'temperature'?); valid arguments: ['sampling', 'temperature']."
    """
    hints = [
        f"{key!r}: did you mean {close[0]!r}?"
        for key in unknown
        if (close := difflib.get_close_matches(key, known, n=1))
    ]
    detail = f" ({' '.join(hints)})" if hints else ""
    return f"Unknown TaskMixture {what}(s) {unknown}{detail}; valid {what}s: {known}."


class _KeywordsOnly(type):
    """Checks the arguments before the dataclass ``__init__`` runs, so a positional value or a
    misspelt keyword is an :class:`InvalidConfigError` naming the fix, not a bare ``TypeError``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        known = [f.name for f in fields(cast(Any, cls))]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise InvalidConfigError(_unknown_keys_message(unknown, sorted(known), "argument"))
        if args:  # field order is an implementation detail: say which keyword each value was meant for
            guess = ", ".join(f"{name}={value!r}" for name, value in zip(known, args))
            raise InvalidConfigError(
                f"{cls.__name__} takes keyword arguments only, got {args!r} positionally; pass them by keyword: "
                f"{cls.__name__}({guess})."
            )
        return super().__call__(**kwargs)


@dataclass(frozen=True, kw_only=True)
class TaskMixture(metaclass=_KeywordsOnly):
    """How often each task of a multitask run is drawn, and whether a batch mixes tasks.

    Args:
        sampling: ``"proportional"`` (p_i ~ n_i), ``"temperature"`` (p_i ~ n_i^(1/T)) or
            ``"uniform"`` (p_i = 1/K). Ignored when ``weights`` is given.
        temperature: T of ``"temperature"`` sampling, > 0. T = 1 is proportional; larger T
            moves towards uniform, so small tasks are drawn more often than their size says.
        size_cap: Caps every n_i at this many rows before proportional/temperature sampling
            (jiant's ``min(n_i, cap)``) and in the epoch length, so one huge task cannot
            dominate. ``None``: no cap.
        weights: Explicit weight per task name, >= 0 with a positive sum; normalised to
            probabilities. Overrides ``sampling``; must name every task (0 leaves one out).
        batches: ``"homogeneous"`` (default): every batch holds one task, drawn with the
            mixture probabilities. ``"mixed"``: every row's task is drawn on its own.

    Example:
        >>> TaskMixture(sampling="uniform").probabilities({"a": 10, "b": 1000})
        {'a': 0.5, 'b': 0.5}
        >>> TaskMixture(weights={"a": 3, "b": 1}).probabilities({"a": 10, "b": 1000})
        {'a': 0.75, 'b': 0.25}
        >>> TaskMixture(temperature=0)
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: TaskMixture.temperature=0 must be > 0 (p_i ~ n_i^(1/T)); use 1 for proportional sampling, larger values to favour small tasks.
        >>> TaskMixture("uniform")
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: TaskMixture takes keyword arguments only, got ('uniform',) positionally; pass them by keyword: TaskMixture(sampling='uniform').
    """

    sampling: SamplingName = field(
        default="proportional", metadata={"help": "proportional (n_i), temperature (n_i^(1/T)) or uniform."}
    )
    temperature: float = field(default=2.0, metadata={"help": "T of temperature sampling, > 0; 1 = proportional."})
    size_cap: int | None = field(default=None, metadata={"help": "Caps each task's size n_i (jiant style)."})
    weights: Mapping[str, float] | None = field(
        default=None, metadata={"help": "Explicit weight per task (>= 0, positive sum); overrides sampling."}
    )
    batches: BatchesName = field(
        default="homogeneous", metadata={"help": "homogeneous (one task per batch) or mixed (task drawn per row)."}
    )

    def __post_init__(self) -> None:
        name = type(self).__name__
        for attr, annotation in (("sampling", SamplingName), ("batches", BatchesName)):
            value = getattr(self, attr)
            if value not in get_args(annotation):
                close = difflib.get_close_matches(str(value), get_args(annotation), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise InvalidConfigError(f"{name}.{attr}={value!r} is not one of {list(get_args(annotation))}.{hint}")
        if not _is_number(self.temperature) or not math.isfinite(self.temperature) or self.temperature <= 0:
            raise InvalidConfigError(
                f"{name}.temperature={self.temperature!r} must be > 0 (p_i ~ n_i^(1/T)); use 1 for proportional "
                "sampling, larger values to favour small tasks."
            )
        if self.size_cap is not None and (not _is_int(self.size_cap) or self.size_cap < 1):
            raise InvalidConfigError(
                f"{name}.size_cap={self.size_cap!r} must be a whole number of rows >= 1, or None for no cap."
            )
        if self.weights is not None:
            # A private copy: a caller mutating its dict later must not change a frozen mixture.
            object.__setattr__(self, "weights", self._checked_weights(self.weights))

    @staticmethod
    def _checked_weights(weights: Any) -> dict[str, float]:
        if not isinstance(weights, Mapping):
            raise InvalidConfigError(
                f"TaskMixture.weights={weights!r} must be a mapping task name -> weight, e.g. {{'sst2': 2.0, 'mnli': 1.0}}."
            )
        for task, weight in weights.items():
            if not isinstance(task, str):
                raise InvalidConfigError(f"TaskMixture.weights key {task!r} must be a task name (str).")
            if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
                raise InvalidConfigError(
                    f"TaskMixture.weights[{task!r}]={weight!r} must be a finite number >= 0 (0 leaves the task out)."
                )
        total = sum(float(w) for w in weights.values())
        if not total > 0:
            raise InvalidConfigError(
                f"TaskMixture.weights={dict(weights)!r} sum to {total}, which is not positive; give at least one task a "
                "weight > 0, or drop `weights` to use `sampling`."
            )
        return {task: float(w) for task, w in weights.items()}

    def probabilities(self, sizes: Mapping[str, int]) -> dict[str, float]:
        """Sampling probability of each task (same order as ``sizes``); they sum to 1.

        Raises :class:`InvalidConfigError` for an empty mixture, a task with no rows, or
        ``weights`` that name a task not in ``sizes`` or miss one.

        Example:
            >>> TaskMixture().probabilities({"a": 30, "b": 10})
            {'a': 0.75, 'b': 0.25}
            >>> TaskMixture(size_cap=10).probabilities({"a": 30, "b": 10})
            {'a': 0.5, 'b': 0.5}
        """
        sizes = _checked_sizes(sizes)
        if self.weights is not None:
            unknown = [task for task in self.weights if task not in sizes]
            if unknown:
                hints = [
                    f"{task!r}: did you mean {close[0]!r}?"
                    for task in unknown
                    if (close := difflib.get_close_matches(task, list(sizes), n=1))
                ]
                raise InvalidConfigError(
                    f"TaskMixture.weights names task(s) {unknown} that are not in the mixture {list(sizes)}. "
                    + " ".join(hints)
                )
            missing = [task for task in sizes if task not in self.weights]
            if missing:
                raise InvalidConfigError(
                    f"TaskMixture.weights has no weight for task(s) {missing}; give every task a weight "
                    "(0 leaves a task out)."
                )
            raw = [self.weights[task] for task in sizes]
            return _normalised(sizes, raw)
        if self.sampling == "uniform":
            return {task: 1.0 / len(sizes) for task in sizes}
        capped = [min(n, self.size_cap) if self.size_cap is not None else n for n in sizes.values()]
        if self.sampling == "proportional":
            return _normalised(sizes, [float(n) for n in capped])
        # In log space, relative to the largest: n^(1/T) overflows a float for a small T (1e7 ** 100).
        logits = [math.log(n) / self.temperature for n in capped]
        top = max(logits)
        return _normalised(sizes, [math.exp(logit - top) for logit in logits])

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for a recipe or a JSON file; :meth:`from_dict` reads them back.

        Example:
            >>> TaskMixture.from_dict(TaskMixture(sampling="uniform").to_dict()) == TaskMixture(sampling="uniform")
            True
        """
        data = asdict(self)
        data["weights"] = dict(self.weights) if self.weights is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskMixture:
        """Build a mixture from plain values, refusing unknown keys with a suggestion.

        Example:
            >>> TaskMixture.from_dict({"sampling": "temperature", "temprature": 3})
            Traceback (most recent call last):
            ...
            hf_prune.errors.InvalidConfigError: Unknown TaskMixture key(s) ['temprature'] ('temprature': did you mean 'temperature'?); valid keys: ['batches', 'sampling', 'size_cap', 'temperature', 'weights'].
        """
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidConfigError(_unknown_keys_message(unknown, known, "key"))
        return cls(**dict(data))


def _checked_sizes(sizes: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(sizes, Mapping) or len(sizes) == 0:
        raise InvalidConfigError(
            f"task_sizes={sizes!r} must be a non-empty mapping task name -> number of training rows."
        )
    for task, n in sizes.items():
        if not _is_int(n) or n < 1:
            raise InvalidConfigError(
                f"Task {task!r} has {n!r} training rows; every task in the mixture needs at least one row. "
                "Drop the task or check how its dataset was built."
            )
    return {task: int(n) for task, n in sizes.items()}


def _normalised(sizes: Mapping[str, int], raw: list[float]) -> dict[str, float]:
    total = math.fsum(raw)
    return {task: value / total for task, value in zip(sizes, raw)}


class _TaskStream:
    """One task's rows as global indices, in seeded permutations: every row once per cycle,
    then a fresh permutation, so a task drawn more often than its size still sees all its rows."""

    def __init__(self, offset: int, size: int, rng: np.random.Generator) -> None:
        self.offset, self.size, self.rng = offset, size, rng
        self.order = np.empty(0, dtype=np.int64)
        self.position = 0

    def take(self, count: int) -> list[int]:
        rows: list[int] = []
        while count > 0:
            if self.position == len(self.order):
                self.order = self.rng.permutation(self.size) + self.offset
                self.position = 0
            chunk = self.order[self.position : self.position + count]
            self.position += len(chunk)
            count -= len(chunk)
            rows.extend(chunk.tolist())  # python ints: datasets and torch index with them
        return rows


class MultitaskBatchSampler(Sampler[list[int]]):
    """Seeded batches of global indices into the concatenated task datasets.

    Every batch has exactly ``batch_size`` rows (accelerate's ``BatchSamplerShard`` only hands
    out full batches evenly). Rows of a task come from seeded permutations without replacement;
    a task exhausted within an epoch starts a fresh permutation. The order depends only on
    ``seed`` and the epoch given to :meth:`set_epoch`, so every process draws the same stream and
    accelerate can split it into disjoint per-process batches.

    Args:
        task_sizes: Task name -> number of training rows, in the order the datasets are
            concatenated.
        batch_size: Rows per batch (per process under accelerate).
        mixture: How tasks are drawn (:class:`TaskMixture`).
        seed: Non-negative integer seed.
        num_batches: Batches per epoch; default ``ceil(sum of min(n_i, size_cap) over the tasks
            that can be drawn / batch_size)``, i.e. about one pass over the (capped) data.

    Example:
        >>> sampler = MultitaskBatchSampler({"a": 6, "b": 2}, batch_size=2, seed=1)
        >>> sampler.task_offsets, sampler.task_of(7)
        ({'a': 0, 'b': 6}, 'b')
        >>> first = list(sampler)
        >>> first == list(sampler)  # same seed and epoch: same batches
        True
        >>> sampler.set_epoch(1)
        >>> first != list(sampler)
        True
    """

    def __init__(
        self,
        task_sizes: Mapping[str, int],
        batch_size: int,
        mixture: TaskMixture = TaskMixture(),  # noqa: B008  (frozen, so a shared default is safe)
        *,
        seed: int = 0,
        num_batches: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(mixture, TaskMixture):
            raise InvalidConfigError(
                f"mixture={mixture!r} must be a TaskMixture, e.g. TaskMixture(sampling='uniform')."
            )
        if not _is_int(batch_size) or batch_size < 1:
            raise InvalidConfigError(f"batch_size={batch_size!r} must be a whole number >= 1.")
        if not _is_int(seed) or seed < 0:
            raise InvalidConfigError(f"seed={seed!r} must be a whole number >= 0.")
        sizes = _checked_sizes(task_sizes)
        self.mixture = mixture
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.task_sizes = sizes
        self.probabilities = mixture.probabilities(sizes)
        self.task_names = tuple(sizes)
        starts = np.cumsum([0, *sizes.values()]).tolist()
        self.task_offsets = dict(zip(self.task_names, starts[:-1]))
        self._starts = starts[:-1]
        self.total_size = starts[-1]
        if num_batches is None:
            cap = mixture.size_cap
            rows = sum(min(n, cap) if cap else n for t, n in sizes.items() if self.probabilities[t] > 0)
            num_batches = math.ceil(rows / self.batch_size)
        elif not _is_int(num_batches) or num_batches < 1:
            raise InvalidConfigError(f"num_batches={num_batches!r} must be a whole number >= 1, or None for one epoch.")
        self.num_batches = int(num_batches)
        self.epoch = 0

    @property
    def sampler(self) -> MultitaskBatchSampler:
        """This sampler itself, for accelerate. ``DataLoaderShard.set_epoch`` forwards the epoch
        to ``<batch sampler>.sampler`` and ``<wrapper>.batch_sampler.sampler`` (the layout of a
        torch ``BatchSampler``), not to a sampler wrapped in ``BatchSamplerShard`` or
        ``SkipBatchSampler``; answering here lets the epoch reach this sampler through them."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (deterministic per seed+epoch).

        Example:
            >>> sampler = MultitaskBatchSampler({"a": 8}, batch_size=4)
            >>> sampler.set_epoch(-1)
            Traceback (most recent call last):
            ...
            hf_prune.errors.InvalidConfigError: epoch=-1 must be a whole number >= 0.
        """
        if not _is_int(epoch) or epoch < 0:
            raise InvalidConfigError(f"epoch={epoch!r} must be a whole number >= 0.")
        self.epoch = int(epoch)

    def task_of(self, index: int) -> str:
        """Name of the task a global index belongs to.

        Example:
            >>> MultitaskBatchSampler({"a": 3, "b": 5}, batch_size=2).task_of(3)
            'b'
        """
        if not 0 <= index < self.total_size:
            raise IndexError(f"index {index} is outside the concatenated tasks (0..{self.total_size - 1}).")
        return self.task_names[bisect.bisect_right(self._starts, index) - 1]

    def round_up_num_batches(self, multiple: int) -> None:
        """Grow the epoch to a multiple of ``multiple`` batches (one per process).

        accelerate hands batch ``i`` to process ``i % num_processes`` and pads a short last
        round with batches from the start of the epoch, which would give two processes the same
        rows; this sampler can draw more batches instead.

        Example:
            >>> sampler = MultitaskBatchSampler({"a": 10}, batch_size=4)
            >>> sampler.round_up_num_batches(2); len(sampler)
            4
        """
        if not _is_int(multiple) or multiple < 1:
            raise InvalidConfigError(f"multiple={multiple!r} must be a whole number >= 1.")
        self.num_batches = math.ceil(self.num_batches / multiple) * multiple

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        # Independent child streams for the task draws and each task's permutations: a task's
        # row order does not depend on how often the other tasks were drawn before it.
        draw_seed, *task_seeds = np.random.SeedSequence([self.seed, self.epoch]).spawn(1 + len(self.task_names))
        draws = np.random.default_rng(draw_seed)
        streams = [
            _TaskStream(start, size, np.random.default_rng(task_seed))
            for start, size, task_seed in zip(self._starts, self.task_sizes.values(), task_seeds)
        ]
        probs = np.asarray(list(self.probabilities.values()), dtype=np.float64)
        if self.mixture.batches == "homogeneous":
            for task in draws.choice(len(streams), size=self.num_batches, p=probs).tolist():
                yield streams[task].take(self.batch_size)
        else:
            for _ in range(self.num_batches):
                row_tasks = draws.choice(len(streams), size=self.batch_size, p=probs).tolist()
                yield [streams[task].take(1)[0] for task in row_tasks]


def prepared_train_dataloader(
    dataset: Any,
    batch_sampler: MultitaskBatchSampler,
    collate_fn: Any,
    accelerator: Any,
    **dataloader_kwargs: Any,
) -> DataLoader:
    """A training ``DataLoader`` over ``batch_sampler``, prepared by ``accelerator``.

    Under N processes accelerate wraps the sampler in ``BatchSamplerShard``: process ``p`` gets
    batches ``p, p + N, ...`` of the shared stream, so processes see disjoint batches. The epoch
    length is rounded up to a multiple of N first (see
    :meth:`MultitaskBatchSampler.round_up_num_batches`). ``set_epoch`` on the returned loader
    (what ``Trainer`` calls each epoch, and what accelerate calls at every ``iter``) reaches
    the sampler, also after ``accelerate.skip_first_batches`` on resume.

    Args:
        dataset: Map-style dataset of the concatenated tasks, ``len(dataset)`` equal to the
            sum of the sampler's task sizes.
        batch_sampler: The :class:`MultitaskBatchSampler`.
        collate_fn: Turns a list of rows into a batch, e.g. ``MultitaskCollator``.
        accelerator: An ``accelerate.Accelerator`` (``trainer.accelerator`` in a Trainer).
        dataloader_kwargs: Other ``DataLoader`` arguments (``num_workers``, ``pin_memory``...);
            not ``batch_size``, ``shuffle``, ``sampler``, ``drop_last``: the sampler decides those.

    Example:
        >>> import torch
        >>> from accelerate import Accelerator
        >>> sampler = MultitaskBatchSampler({"a": 6, "b": 2}, batch_size=2)
        >>> loader = prepared_train_dataloader(list(range(8)), sampler, torch.tensor, Accelerator())
        >>> loader.set_epoch(3); sampler.epoch
        3
        >>> len(loader)
        4
    """
    clashing = sorted({"batch_size", "shuffle", "sampler", "batch_sampler", "drop_last"} & set(dataloader_kwargs))
    if clashing:
        raise InvalidConfigError(
            f"prepared_train_dataloader got {clashing}; the MultitaskBatchSampler sets batch size, order and "
            "length. Set them on the sampler (batch_size=, num_batches=) and drop these arguments."
        )
    if not isinstance(batch_sampler, MultitaskBatchSampler):
        raise InvalidConfigError(f"batch_sampler={batch_sampler!r} must be a MultitaskBatchSampler.")
    if hasattr(dataset, "__len__") and len(dataset) != batch_sampler.total_size:
        raise InvalidConfigError(
            f"The dataset has {len(dataset)} rows but the sampler's task sizes {batch_sampler.task_sizes} add up to "
            f"{batch_sampler.total_size}; build the sampler from the sizes of the datasets you concatenated, in the "
            "same order."
        )
    if accelerator.num_processes > 1 and not accelerator.split_batches:
        before = len(batch_sampler)
        batch_sampler.round_up_num_batches(accelerator.num_processes)
        if len(batch_sampler) != before:
            logger.info(
                "Multitask epoch grown from %d to %d batches, a multiple of the %d processes, so that no two "
                "processes get the same batch.",
                before,
                len(batch_sampler),
                accelerator.num_processes,
            )
    loader = DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=collate_fn, **dataloader_kwargs)
    prepared = accelerator.prepare(loader)
    shard = getattr(prepared, "batch_sampler", None)
    if isinstance(shard, BatchSamplerShard) and shard.batch_sampler is batch_sampler:
        # BatchSamplerShard has no `.sampler`; on resume accelerate wraps it once more
        # (SkipBatchSampler) and then only looks at `.batch_sampler.sampler`, so point it at us.
        shard.sampler = batch_sampler
    return prepared
