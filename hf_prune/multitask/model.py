"""One shared pretrained encoder with a sequence-classification head per task.

Each head is the architecture's **own** sequence-classification head: :class:`MultitaskModel`
builds one stock ``AutoModelForSequenceClassification`` per task and keeps everything but its
encoder, and all of them run on one shared encoder (``model.encoder``). So a single task's model
is a stock model (:meth:`MultitaskModel.task_model`), which is what a per-task export saves and
what anyone loads with plain ``from_pretrained``. Pruning targets are found in ``model.encoder``
only (it is the model's ``base_model``), so the heads stay dense.

A batch carries ``task_ids`` (one per row). Rows of one task run through that task's stock model
(encoder + head) and its own loss (cross-entropy or MSE, by the task's ``problem_type``); in a
batch that mixes tasks, the losses are averaged over rows, and the logits are padded with NaN to
the widest head.

Example:
    >>> from transformers import BertConfig
    >>> from hf_prune.multitask import MultitaskModel, TaskHead
    >>> encoder_config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
    ...                             intermediate_size=64, vocab_size=100)
    >>> model = MultitaskModel.from_encoder_config(encoder_config, [
    ...     TaskHead("sentiment", ("negative", "positive")), TaskHead("intensity", (), "regression")])
    >>> model.task_names
    ['sentiment', 'intensity']
    >>> type(model.task_model("sentiment")).__name__
    'BertForSequenceClassification'
"""

from __future__ import annotations

import copy
import difflib
import importlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..errors import InvalidConfigError, UnknownTaskError
from ..pretrained import check_model_available

# Where the task list lives in config.json (beside the encoder's own config fields).
CONFIG_KEY = "hf_prune_multitask"
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class TaskHead:
    """What a task's head needs: its name, class names (``()`` for regression) and type.

    Any object with ``name``, ``label_names`` and ``task_type`` attributes works where a
    ``TaskHead`` is expected (an :class:`hf_prune.tasks.Task` does).

    Example:
        >>> TaskHead("topic", ("business", "sport")).num_labels
        2
        >>> TaskHead("intensity", (), "regression").problem_type
        'regression'
    """

    name: str
    label_names: tuple[str, ...] = ()
    task_type: Literal["classification", "regression"] = "classification"

    @property
    def num_labels(self) -> int:
        return 1 if self.task_type == "regression" else len(self.label_names)

    @property
    def problem_type(self) -> str:
        return "regression" if self.task_type == "regression" else "single_label_classification"

    @classmethod
    def of(cls, task: Any) -> TaskHead:
        """The head of a task-like object (``name``, ``label_names``, ``task_type``), checked.

        A task *name* is refused, not looked up: this module does not know the task registry,
        the trainer needs the same ``Task`` objects for the data anyway, and a string may as well
        be meant as a head of the user's own (where guessing a registered task would be wrong).

        Example:
            >>> TaskHead.of("movie_sentiment")
            Traceback (most recent call last):
            ...
            hf_prune.errors.InvalidConfigError: tasks must be Task objects, not names; got the string 'movie_sentiment': use hf_prune.tasks.get_task('movie_sentiment') for a named task, or TaskHead('movie_sentiment', label_names=('negative', 'positive')) for a head of your own.
        """
        if isinstance(task, str):
            raise InvalidConfigError(
                f"tasks must be Task objects, not names; got the string {task!r}: use "
                f"hf_prune.tasks.get_task({task!r}) for a named task, or TaskHead({task!r}, label_names=('negative', "
                f"'positive')) for a head of your own."
            )
        if not isinstance(task, Mapping) and not hasattr(task, "name"):
            raise InvalidConfigError(
                f"{task!r} ({type(task).__name__}) is not a task: a task has a name, label_names and task_type; "
                f"pass hf_prune.tasks.get_task('movie_sentiment'), a Task.from_dataset(...) or a TaskHead(...)."
            )
        if isinstance(task, Mapping):
            name, labels, kind = task.get("name"), task.get("label_names", ()), task.get("task_type", "classification")
        else:
            name = getattr(task, "name", None)
            labels = getattr(task, "label_names", ())
            kind = getattr(task, "task_type", "classification")
        if not isinstance(name, str) or not _TASK_NAME.match(name):
            raise InvalidConfigError(
                f"Task name {name!r} is not usable as a head name; use letters, digits, '_' and '-' "
                f"(e.g. movie_sentiment)."
            )
        if kind not in ("classification", "regression"):
            raise InvalidConfigError(
                f"Task {name!r}: task_type {kind!r} is not 'classification' or 'regression'; set one of them."
            )
        labels = tuple(str(label) for label in labels or ())
        if kind == "classification" and len(labels) < 2:
            raise InvalidConfigError(
                f"Task {name!r} is a classification task with {len(labels)} class name(s) {list(labels)}; a head "
                f"needs at least 2 (label_names=('negative', 'positive')), or task_type='regression'."
            )
        if kind == "regression" and labels:
            raise InvalidConfigError(
                f"Task {name!r} is a regression task but has class names {list(labels)}; drop them, or make it "
                f"task_type='classification'."
            )
        return cls(name, labels, kind)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label_names": list(self.label_names), "task_type": self.task_type}


def task_heads(tasks: Sequence[Any]) -> list[TaskHead]:
    """Checked heads of ``tasks``: at least one, names unique.

    Example:
        >>> task_heads([TaskHead("a", ("x", "y")), TaskHead("a", ("x", "y"))])
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: Task 'a' appears twice in the task list; each task needs its own name.
    """
    if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence) or not tasks:
        raise InvalidConfigError(
            f"tasks: {tasks!r} is not a non-empty list of tasks; pass e.g. [get_task('movie_sentiment'), ...]."
        )
    heads = [TaskHead.of(task) for task in tasks]
    seen: set[str] = set()
    for head in heads:
        if head.name in seen:
            raise InvalidConfigError(
                f"Task {head.name!r} appears twice in the task list; each task needs its own name."
            )
        seen.add(head.name)
    return heads


def unknown_task_error(name: Any, names: Sequence[str], owner: str) -> UnknownTaskError:
    """The error for task ``name`` that ``owner`` (a phrase: "This multitask model") does not
    have: it lists ``names`` and suggests the closest one.

    Example:
        >>> print(unknown_task_error("topc", ["sentiment", "topic"], "This multitask model"))
        This multitask model has no task 'topc' (did you mean 'topic'?); its tasks: ['sentiment', 'topic'].
    """
    close = difflib.get_close_matches(name, list(names), n=1) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownTaskError(f"{owner} has no task {name!r}{hint}; its tasks: {list(names)}.")


def task_config(encoder_config: PretrainedConfig, head: TaskHead) -> PretrainedConfig:
    """The config of ``head``'s stock single-task model: the encoder's config + the task's labels."""
    config = copy.deepcopy(encoder_config)
    config.__dict__.pop(CONFIG_KEY, None)
    config.__dict__.pop("auto_map", None)
    config.architectures = None
    config.num_labels = head.num_labels
    config.id2label = dict(enumerate(head.label_names)) if head.label_names else {0: "LABEL_0"}
    config.label2id = {label: index for index, label in config.id2label.items()}
    config.problem_type = head.problem_type  # type: ignore[assignment]  # a Literal in transformers' stubs
    return config


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_class(path: str) -> type:
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise InvalidConfigError(
            f"The multitask config names the head class {path!r}, which cannot be imported here ({err}); install "
            f"the package that defines it."
        ) from None


class MultitaskModel(PreTrainedModel):
    """A shared encoder (``self.encoder``) + one stock sequence-classification head per task.

    Build it from a pretrained encoder with :meth:`from_encoder` (every head is initialised as
    ``AutoModelForSequenceClassification.from_pretrained`` would), from a config with
    :meth:`from_encoder_config`; a saved one loads with ``from_pretrained`` / ``load_pruned``.

    ``config`` is the encoder's own config plus ``config.hf_prune_multitask`` = ``{"tasks": [...],
    "head_class": "module.Class"}``.
    """

    base_model_prefix = "encoder"
    # Any encoder's config: AutoConfig reads config.json by its model_type (see from_pretrained).
    config_class = None
    # The forward takes no **kwargs: the Trainer must not pass num_items_in_batch to it.
    accepts_loss_kwargs = False
    main_input_name = "input_ids"
    # The attention implementation is the encoder's business: it refuses one it lacks itself.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: PretrainedConfig, task_models: Sequence[PreTrainedModel] | None = None) -> None:
        super().__init__(config)
        spec = getattr(config, CONFIG_KEY, None)
        if not isinstance(spec, Mapping) or not spec.get("tasks"):
            raise InvalidConfigError(
                f"This config has no {CONFIG_KEY!r} task list, so it is not a multitask model's config; build the "
                f"model with MultitaskModel.from_encoder(pretrained, tasks)."
            )
        self.heads_spec = task_heads(list(spec["tasks"]))
        if task_models is None:
            head_class = _import_class(spec["head_class"]) if spec.get("head_class") else None
            task_models = [self._new_task_model(config, head, head_class) for head in self.heads_spec]
        self._share_encoder(list(task_models))
        self.post_init()

    @staticmethod
    def _new_task_model(config: PretrainedConfig, head: TaskHead, head_class: Any) -> PreTrainedModel:
        if head_class is None or head_class.__module__.startswith("transformers."):
            return AutoModelForSequenceClassification.from_config(task_config(config, head))
        return head_class(task_config(config, head))

    def _share_encoder(self, task_models: list[PreTrainedModel]) -> None:
        prefixes = {model.base_model_prefix for model in task_models}
        if len(prefixes) != 1 or not all(hasattr(model, model.base_model_prefix) for model in task_models):
            raise InvalidConfigError(
                f"The task models have different or missing encoders ({sorted(prefixes)}); all heads must be "
                f"sequence-classification models of one architecture."
            )
        self.head_prefix = prefixes.pop()
        self.encoder = getattr(task_models[0], self.head_prefix)
        self.heads = nn.ModuleDict()
        for head, model in zip(self.heads_spec, task_models, strict=True):
            # The head keeps everything of its stock model but the encoder. The shared encoder is
            # put in its __dict__, not registered as a child: the model's forward finds it as
            # `self.<prefix>`, and its parameters are counted, saved and pruned once, here.
            del model._modules[self.head_prefix]
            model.__dict__[self.head_prefix] = self.encoder
            self.heads[head.name] = model

    @classmethod
    def from_encoder(cls, pretrained: str, tasks: Sequence[Any], **kwargs: Any) -> MultitaskModel:
        """A multitask model over the pretrained encoder at ``pretrained`` (Hub id or folder).

        Each head starts as ``AutoModelForSequenceClassification.from_pretrained(pretrained, ...)``
        would make it for its task, so task ``i``'s model starts exactly like a single-task one.
        ``kwargs`` go to ``from_pretrained`` (``revision``, ``dtype``, ...). A checkpoint that
        already has a classifier of another width (a fine-tuned model) gets a new one for each
        task whose label count differs (``ignore_mismatched_sizes=True`` unless given).

        Example:
            >>> # model = MultitaskModel.from_encoder("sentence-transformers/all-MiniLM-L6-v2",
            >>> #                                     [get_task("movie_sentiment"), get_task("bbc_topic")])
        """
        heads = task_heads(tasks)
        if "subfolder" not in kwargs:  # with a subfolder, config.json is not where the check looks
            # A missing folder or an uncached offline Hub id: a clear error before len(tasks)
            # from_pretrained calls, not transformers' OSError about repo id syntax.
            pretrained = check_model_available(os.fspath(pretrained))
        kwargs.setdefault("ignore_mismatched_sizes", True)
        base = AutoConfig.from_pretrained(pretrained, **{k: v for k, v in kwargs.items() if k in _CONFIG_KWARGS})
        models = [
            AutoModelForSequenceClassification.from_pretrained(pretrained, config=task_config(base, head), **kwargs)
            for head in heads
        ]
        return cls(_multitask_config(models[0].config, heads, type(models[0])), task_models=models)

    @classmethod
    def from_encoder_config(
        cls, encoder_config: PretrainedConfig, tasks: Sequence[Any], head_class: type | None = None
    ) -> MultitaskModel:
        """A randomly initialised multitask model of ``encoder_config``'s architecture (tests, custom models).

        ``head_class`` is the single-task model class when ``AutoModelForSequenceClassification``
        does not know the architecture.
        """
        heads = task_heads(tasks)
        models = [cls._new_task_model(encoder_config, head, head_class) for head in heads]
        return cls(_multitask_config(encoder_config, heads, type(models[0])), task_models=models)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        # config_class is None (any encoder): read config.json by its model_type first.
        if kwargs.get("config") is None:
            config_kwargs = {k: v for k, v in kwargs.items() if k in _CONFIG_KWARGS}
            kwargs["config"] = AutoConfig.from_pretrained(pretrained_model_name_or_path, **config_kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        # Modules the multitask model owns are all inside the encoder or a head, each a
        # PreTrainedModel with its own _init_weights; transformers applies those.
        return

    @property
    def task_names(self) -> list[str]:
        return [head.name for head in self.heads_spec]

    def task_head(self, name: str) -> TaskHead:
        """The :class:`TaskHead` of task ``name``."""
        return self.heads_spec[self.task_index(name)]

    def task_index(self, name: str) -> int:
        """The task id of ``name`` (its position in the task list), as rows carry it in ``task_ids``."""
        names = self.task_names
        if name not in names:
            raise unknown_task_error(name, names, "This multitask model")
        return names.index(name)

    def task_model(self, name: str) -> PreTrainedModel:
        """Task ``name``'s stock single-task model (encoder + its head), sharing this model's tensors.

        It is the class ``AutoModelForSequenceClassification`` builds for the architecture, so
        ``task_model(name).save_pretrained(folder)`` writes a folder that loads without hf_prune.
        """
        head = cast(PreTrainedModel, self.heads[self.task_names[self.task_index(name)]])
        model = copy.copy(head)  # a new module object whose tensors are head's own
        model.__dict__.pop(self.head_prefix, None)
        model._modules = {self.head_prefix: self.encoder, **head._modules}
        return model

    def task_models(self) -> Iterator[tuple[str, PreTrainedModel]]:
        """``(name, task_model(name))`` for every task, in task-id order."""
        for name in self.task_names:
            yield name, self.task_model(name)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        """Run every row through its task's model; ``task_ids`` may be omitted with one task.

        ``output_hidden_states=True`` also returns the shared encoder's hidden states of every row
        (in a batch that mixes tasks, each task's rows are put back in their places).
        """
        given: dict[str, torch.Tensor | None] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
        }
        inputs = {key: value for key, value in given.items() if value is not None}
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        task_ids = self._checked_task_ids(task_ids, rows)
        present = [int(t) for t in torch.unique(task_ids).tolist()]
        if len(present) == 1:  # the usual case: task-homogeneous batches
            return self._run_task(present[0], inputs, labels, output_hidden_states)
        width = max(self.heads_spec[t].num_labels for t in present)
        logits: torch.Tensor | None = None
        loss: torch.Tensor | None = None
        hidden: list[torch.Tensor] | None = None
        for task in present:
            selected = (task_ids == task).nonzero(as_tuple=True)[0]
            output = self._run_task(
                task,
                {key: value[selected] for key, value in inputs.items()},
                labels[selected] if labels is not None else None,
                output_hidden_states,
            )
            if logits is None:
                logits = output.logits.new_full((rows, width), float("nan"))
            logits[selected, : output.logits.shape[-1]] = output.logits
            if output.loss is not None:
                weighted = output.loss * (selected.numel() / rows)
                loss = weighted if loss is None else loss + weighted
            if output.hidden_states is not None:
                if hidden is None:
                    hidden = [state.new_zeros((rows, *state.shape[1:])) for state in output.hidden_states]
                for full, part in zip(hidden, output.hidden_states, strict=True):
                    full[selected] = part
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=tuple(hidden) if hidden else None)

    def _checked_task_ids(self, task_ids: torch.Tensor | None, rows: int) -> torch.Tensor:
        device = self.encoder.device
        if task_ids is None:
            if len(self.heads_spec) > 1:
                raise InvalidConfigError(
                    f"This model has {len(self.heads_spec)} tasks {self.task_names}; pass task_ids (one task id per "
                    f"row, the task's position in that list). MultitaskTrainer adds them to per-task datasets; with "
                    f"another Trainer or loop, add the column with hf_prune.multitask.with_task_ids(dataset, task_id) "
                    f"and batch the rows with MultitaskCollator, which carries it."
                )
            return torch.zeros(rows, dtype=torch.long, device=device)
        task_ids = task_ids.reshape(-1).long()
        if task_ids.numel() != rows:
            raise InvalidConfigError(
                f"task_ids has {task_ids.numel()} entries for a batch of {rows} rows; give one per row."
            )
        bad = task_ids[(task_ids < 0) | (task_ids >= len(self.heads_spec))]
        if bad.numel():
            raise InvalidConfigError(
                f"task_ids holds {int(bad[0])}, but this model's task ids are 0..{len(self.heads_spec) - 1} "
                f"({self.task_names})."
            )
        return task_ids

    def _run_task(
        self, task: int, inputs: dict[str, torch.Tensor], labels: torch.Tensor | None, hidden: bool | None = None
    ) -> Any:
        head = self.heads_spec[task]
        if labels is not None:
            # One labels tensor serves every task of a mixed batch (float when any is regression).
            labels = labels.float() if head.task_type == "regression" else labels.long()
        flags = {"output_hidden_states": True} if hidden else {}
        return self.heads[head.name](**inputs, labels=labels, return_dict=True, **flags)


# from_pretrained keyword arguments that also apply to reading the config.
_CONFIG_KWARGS = (
    "revision",
    "token",
    "cache_dir",
    "local_files_only",
    "force_download",
    "subfolder",
    "trust_remote_code",
)


def _multitask_config(
    encoder_config: PretrainedConfig, heads: Sequence[TaskHead], head_class: type
) -> PretrainedConfig:
    """The encoder's config + the task list; the single-task fields (labels, problem type) are
    per head, in each task model's own config."""
    config = copy.deepcopy(encoder_config)
    config.architectures = None  # save_pretrained names the model's own class
    config.__dict__.pop("auto_map", None)
    config.problem_type = None
    setattr(config, CONFIG_KEY, {"tasks": [head.as_dict() for head in heads], "head_class": _class_path(head_class)})
    return config
