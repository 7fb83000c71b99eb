"""Bad input to the multitask API and to a user's own task files gets a clear ``HfPruneError``
that names the bad value and the fix, before any work: one test per finding of the bad-input
battery (benchmarks/bad_input_battery.py, areas ``tasks`` and ``multitask``)."""

from __future__ import annotations

import dataclasses
import pickle
import re

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import Trainer

from hf_prune.errors import DataUnavailableError, InvalidConfigError, UnknownTaskError
from hf_prune.multitask import MultitaskModel, MultitaskTrainer, TaskMixture
from hf_prune.tasks import Task

from .common import MULTITASK_HEADS, tiny_bert, tiny_dataset, tiny_multitask, training_args


def _per_task(n: int = 8) -> dict[str, Dataset]:
    """Rows for both heads of ``tiny_multitask`` (class ids 0/1 fit both)."""
    return {head.name: tiny_dataset(n, seed=i) for i, head in enumerate(MULTITASK_HEADS)}


def _trainer(tmp_path, model=None, **kwargs) -> MultitaskTrainer:
    kwargs.setdefault("train_dataset", _per_task())
    kwargs.setdefault("eval_dataset", _per_task(4))
    return MultitaskTrainer(
        model=tiny_multitask() if model is None and "model_init" not in kwargs else model,
        args=training_args(tmp_path, max_steps=1),
        **kwargs,
    )


# --------------------------------------------------------------------------- the trainer's model
def test_a_single_head_model_with_per_task_datasets_is_refused(tmp_path):
    # Before: accepted, and every task trained the one head of the plain model.
    with pytest.raises(InvalidConfigError, match=r"BertForSequenceClassification, not a MultitaskModel") as caught:
        _trainer(tmp_path, model=tiny_bert())
    assert "MultitaskModel.from_encoder" in str(caught.value) and "PruningTrainer" in str(caught.value)
    with pytest.raises(InvalidConfigError, match="not a MultitaskModel"):
        _trainer(tmp_path, model=tiny_bert(), train_dataset=None)  # per-task eval_dataset alone


def test_a_single_head_model_from_model_init_is_refused(tmp_path):
    with pytest.raises(InvalidConfigError, match="not a MultitaskModel"):
        _trainer(tmp_path, model_init=lambda: tiny_bert())


def test_a_wrapped_multitask_model_counts_as_one():
    from hf_prune.multitask.trainer import _multitask_model

    class Wrapper(nn.Module):  # e.g. a PEFT model around the multitask model
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny_multitask()

    wrapper = Wrapper()
    assert _multitask_model(wrapper) is wrapper.inner
    assert _multitask_model(tiny_bert()) is None and _multitask_model(None) is None


# --------------------------------------------------------------------------- task names
@pytest.mark.parametrize("build", ["from_encoder_config", "from_encoder"])
def test_task_names_instead_of_tasks_say_to_use_get_task(build):
    tasks = ["movie_sentiment", "bbc_topic"]
    with pytest.raises(InvalidConfigError, match=r"got the string 'movie_sentiment'.*get_task\('movie_sentiment'\)"):
        if build == "from_encoder":
            MultitaskModel.from_encoder("/no/such/folder", tasks)  # the tasks are checked first
        else:
            MultitaskModel.from_encoder_config(tiny_bert().config, tasks)


def test_an_object_that_is_no_task_is_named():
    with pytest.raises(InvalidConfigError, match=r"1 \(int\) is not a task"):
        MultitaskModel.from_encoder_config(tiny_bert().config, [1, 2])


def test_from_encoder_of_a_missing_folder_says_so_before_loading(tmp_path):
    # Before: transformers' OSError about repo id syntax.
    missing = str(tmp_path / "no_such_encoder")
    with pytest.raises(DataUnavailableError, match=r"no_such_encoder.*does not exist"):
        MultitaskModel.from_encoder(missing, list(MULTITASK_HEADS))


def test_an_unknown_task_name_suggests_the_close_one():
    # Before: a plain KeyError without a suggestion.
    with pytest.raises(UnknownTaskError, match=r"no task 'topc' \(did you mean 'topic'\?\); its tasks") as caught:
        tiny_multitask().task_model("topc")
    assert isinstance(caught.value, KeyError)  # `except KeyError` keeps working


def test_evaluate_of_an_unknown_task_suggests_the_close_one(tmp_path):
    # Before: KeyError 'topc' from the eval_dataset dict.
    trainer = _trainer(tmp_path)
    with pytest.raises(UnknownTaskError, match=r"evaluate\('topc'\).*did you mean 'topic'"):
        trainer.evaluate("topc")
    lacking = _trainer(tmp_path, eval_dataset={"sentiment": tiny_dataset(4)})
    with pytest.raises(UnknownTaskError, match=r"task 'topic' has no split in this trainer's eval_dataset"):
        lacking.evaluate("topic")
    single = _trainer(tmp_path, eval_dataset=tiny_dataset(4).add_column("task_ids", [0] * 4))
    with pytest.raises(InvalidConfigError, match=r"evaluate\('topic'\) names a task.*one dataset, not per task"):
        single.evaluate("topic")


# --------------------------------------------------------------------------- task ids
def test_forward_without_task_ids_or_with_a_bad_one_is_an_invalid_config_error():
    # Before: a plain ValueError (still caught as one).
    model = tiny_multitask()
    ids = torch.randint(5, 100, (2, 6))
    with pytest.raises(InvalidConfigError, match=r"pass task_ids.*with_task_ids.*MultitaskCollator"):
        model(input_ids=ids)
    with pytest.raises(InvalidConfigError, match=r"task_ids holds 7.*0\.\.1"):
        model(input_ids=ids, task_ids=torch.tensor([0, 7]))
    with pytest.raises(InvalidConfigError, match="one per row"):
        model(input_ids=ids, task_ids=torch.tensor([0]))


def test_a_stock_trainer_on_rows_without_task_ids_says_how_to_add_them(tmp_path):
    trainer = Trainer(model=tiny_multitask(), args=training_args(tmp_path, max_steps=1), train_dataset=tiny_dataset(8))
    with pytest.raises(InvalidConfigError, match=r"with_task_ids.*MultitaskCollator"):
        trainer.train()


# --------------------------------------------------------------------------- the mixture
def test_a_positional_mixture_argument_says_to_pass_it_by_keyword():
    # Before: TypeError "takes 1 positional argument but 2 were given".
    with pytest.raises(InvalidConfigError, match=r"keyword arguments only.*TaskMixture\(sampling='uniform'\)"):
        TaskMixture("uniform")  # type: ignore[misc]
    with pytest.raises(InvalidConfigError, match=r"TaskMixture\(sampling='temperature', temperature=3\)"):
        TaskMixture("temperature", 3)  # type: ignore[misc]


def test_a_misspelt_mixture_keyword_is_named_with_the_valid_ones():
    # Before: TypeError "got an unexpected keyword argument 'temprature'".
    with pytest.raises(InvalidConfigError, match=r"\['temprature'\].*did you mean 'temperature'\?.*'weights'\]"):
        TaskMixture(temprature=2)  # type: ignore[call-arg]


def test_the_keyword_check_keeps_the_mixture_a_plain_frozen_dataclass():
    mixture = TaskMixture(sampling="temperature", temperature=3.0, weights={"a": 1, "b": 2})
    assert pickle.loads(pickle.dumps(mixture)) == mixture
    assert TaskMixture.from_dict(mixture.to_dict()) == mixture
    assert dataclasses.replace(mixture, temperature=2.0).temperature == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        mixture.temperature = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- a user's task files
OPTIONS = dict(text_columns=["review"], label_column="stars", task_type="classification")


@pytest.mark.parametrize(
    ("file_name", "text", "what"),
    [
        ("header.csv", "review,stars\n", "only a header"),
        ("blank.csv", "", "nothing"),
        ("rows.json", " [ ]\n", "only []"),
        ("rows.jsonl", "\n\n", "nothing"),
    ],
)
def test_a_data_file_without_rows_is_called_empty_by_name(tmp_path, file_name, text, what):
    # Before (header.csv): 'Instruction "train" corresponds to no data!'.
    path = tmp_path / file_name
    path.write_text(text)
    with pytest.raises(
        InvalidConfigError, match=rf"train data file '.*{file_name}' is empty \(it holds {re.escape(what)}"
    ):
        Task.from_files("my_reviews", str(path), **OPTIONS)


def test_an_empty_validation_file_is_named_too(tmp_path):
    (tmp_path / "train.csv").write_text("review,stars\n" + "".join(f"text {i},{i % 2}\n" for i in range(20)))
    (tmp_path / "validation.csv").write_text("review,stars\n")
    files = {"train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "validation.csv")}
    with pytest.raises(InvalidConfigError, match=r"validation.*empty"):
        Task.from_files("my_reviews", files, **OPTIONS)
