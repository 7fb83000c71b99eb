"""The multitask trainer: mixture batches through the Trainer's own loop, per-task evaluation, both
pruning paths (MultitaskPruningTrainer, MultitaskTrainer + PruningCallback) for every method."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from transformers import BertConfig, BertTokenizerFast, EvalPrediction

from hf_prune import PruningCallback
from hf_prune.errors import InvalidConfigError
from hf_prune.multitask import MultitaskModel, TaskHead
from hf_prune.multitask.collator import MultitaskCollator
from hf_prune.multitask.sampling import TaskMixture
from hf_prune.multitask.trainer import MultitaskPruningTrainer, MultitaskTrainer

from .common import (
    _COMMON,
    LAYERS,
    METHODS,
    SEQ,
    VOCAB,
    assert_states_equal,
    magnitude_pruned,
    model_state,
    training_args,
)

HEADS = [
    TaskHead("sentiment", ("negative", "positive")),
    TaskHead("topic", ("a", "b", "c")),
    TaskHead("score", (), "regression"),
]


def _model(seed: int = 0) -> MultitaskModel:
    torch.manual_seed(seed)
    return MultitaskModel.from_encoder_config(BertConfig(**_COMMON, num_hidden_layers=LAYERS), HEADS)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BertTokenizerFast:
    folder = tmp_path_factory.mktemp("vocab")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    (folder / "vocab.txt").write_text("\n".join(vocab))
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))


def _task_data(head: TaskHead, n: int, seed: int) -> Dataset:
    """Learnable rows: the label depends on whether token 7 appears."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (n, SEQ), generator=generator)
    ids[: n // 2, 3] = 7
    has = (ids == 7).any(dim=1)
    if head.task_type == "regression":
        labels, label_feature = has.float().tolist(), Value("float32")
    else:
        labels, label_feature = has.long().tolist(), ClassLabel(names=list(head.label_names))
    features = Features(
        {"input_ids": Sequence(Value("int64")), "attention_mask": Sequence(Value("int8")), "labels": label_feature}
    )
    return Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n, "labels": labels}, features=features
    )


SIZES = {"sentiment": 48, "topic": 24, "score": 16}
TRAIN = {head.name: _task_data(head, SIZES[head.name], seed=i) for i, head in enumerate(HEADS)}
EVAL = {head.name: _task_data(head, 8, seed=10 + i) for i, head in enumerate(HEADS)}


def _accuracy(prediction: EvalPrediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}


def _neg_mse(prediction: EvalPrediction) -> dict[str, float]:
    return {"neg_mse": -float(((prediction.predictions.squeeze(-1) - prediction.label_ids) ** 2).mean())}


METRICS = {"sentiment": _accuracy, "topic": _accuracy, "score": _neg_mse}


def _trainer(tmp_path, tokenizer, cls=MultitaskTrainer, model=None, **kwargs):
    args = kwargs.pop("args", None) or training_args(tmp_path, max_steps=12, per_device_train_batch_size=4)
    return cls(
        model=model if model is not None else _model(),
        args=args,
        train_dataset=kwargs.pop("train_dataset", TRAIN),
        eval_dataset=kwargs.pop("eval_dataset", EVAL),
        data_collator=MultitaskCollator(tokenizer, [head.task_type for head in HEADS]),
        compute_metrics=kwargs.pop("compute_metrics", METRICS),
        **kwargs,
    )


def _record_task_batches(model: MultitaskModel) -> list[list[int]]:
    seen: list[list[int]] = []
    forward = model.forward

    @functools.wraps(forward)  # keeps the signature: the Trainer keeps the columns it names
    def recording(*args, **kwargs):
        seen.append(kwargs["task_ids"].tolist())
        return forward(*args, **kwargs)

    model.forward = recording  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("batches", ["homogeneous", "mixed"])
def test_training_batches_follow_the_mixture(tmp_path, tokenizer, batches):
    model = _model()
    seen = _record_task_batches(model)
    trainer = _trainer(tmp_path, tokenizer, model=model, mixture=TaskMixture(sampling="uniform", batches=batches))
    trainer.train()
    assert len(seen) == 12
    if batches == "homogeneous":
        assert all(len(set(batch)) == 1 for batch in seen)
        assert len({batch[0] for batch in seen}) == 3  # uniform: every task gets batches
    else:
        assert any(len(set(batch)) > 1 for batch in seen)


def test_a_plain_dataset_with_task_ids_trains_with_the_stock_sampling(tmp_path, tokenizer):
    rows = [data.add_column("task_ids", [i] * len(data)) for i, data in enumerate(TRAIN.values())]
    from datasets import concatenate_datasets

    mixed = concatenate_datasets([r.cast_column("labels", Value("float32")) for r in rows])
    trainer = _trainer(tmp_path, tokenizer, train_dataset=mixed)
    assert trainer.task_sizes is None
    trainer.train()


def test_evaluation_reports_every_task_metric_and_the_average(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer)
    trainer.train()
    metrics = trainer.evaluate()
    for name, key in (("sentiment", "accuracy"), ("topic", "accuracy"), ("score", "neg_mse")):
        assert f"eval_{name}_{key}" in metrics and f"eval_{name}_loss" in metrics
    expected = np.mean(
        [metrics["eval_sentiment_accuracy"], metrics["eval_topic_accuracy"], metrics["eval_score_neg_mse"]]
    )
    assert metrics["eval_average"] == pytest.approx(expected)
    assert any("eval_average" in entry for entry in trainer.state.log_history)
    test = trainer.evaluate({"topic": EVAL["topic"]}, metric_key_prefix="test")
    assert set(test) >= {"test_topic_accuracy", "test_average"} and test["test_average"] == test["test_topic_accuracy"]


def test_the_average_selects_the_best_checkpoint(tmp_path, tokenizer):
    args = training_args(
        tmp_path,
        max_steps=8,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="steps",
        save_steps=4,
        metric_for_best_model="average",
        load_best_model_at_end=True,
    )
    trainer = _trainer(tmp_path, tokenizer, args=args)
    trainer.train()
    averages = {e["step"]: e["eval_average"] for e in trainer.state.log_history if "eval_average" in e}
    assert sorted(averages) == [4, 8]
    assert trainer.state.best_metric == max(averages.values())
    assert os.path.basename(trainer.state.best_model_checkpoint) == f"checkpoint-{max(averages, key=averages.get)}"


@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_pruning_trainer_and_callback_paths_agree_for_every_method(tmp_path, tokenizer, method_name):
    case = METHODS[method_name]
    states = {}
    for path in ("trainer", "callback"):
        model = _model()
        if case.start_sparsity is not None:
            magnitude_pruned(model, case.start_sparsity)
        args = training_args(tmp_path / path, max_steps=10, per_device_train_batch_size=4, logging_steps=5)
        if path == "trainer":
            trainer = _trainer(
                tmp_path, tokenizer, MultitaskPruningTrainer, model=model, args=args, pruning=case.config()
            )
            method = trainer.pruning_method
        else:
            callback = PruningCallback(case.config())
            trainer = _trainer(tmp_path, tokenizer, model=model, args=args, callbacks=[callback])
            method = callback.method
        trainer.train()
        assert method.finished and all(name.startswith("encoder.") for name in method.targets)
        states[path] = model_state(model)
    assert_states_equal(states["callback"], states["trainer"], "model weights")


def test_the_pruning_trainer_exports_the_shared_model_and_one_model_per_task(tmp_path, tokenizer):
    trainer = _trainer(
        tmp_path / "run",
        tokenizer,
        MultitaskPruningTrainer,
        pruning=METHODS["magnitude"].config(),
        processing_class=tokenizer,
    )
    trainer.train()
    report = trainer.save_pruned(str(tmp_path / "export"))
    assert sorted(report["tasks"]) == sorted(SIZES)
    for name in SIZES:
        assert (tmp_path / "export" / "tasks" / name / "model.safetensors").is_file()
        assert (tmp_path / "export" / "tasks" / name / "tokenizer.json").is_file()


# ----------------------------------------------------------------------------- bad input
def test_train_data_for_a_task_the_model_lacks_is_refused(tmp_path, tokenizer):
    with pytest.raises(InvalidConfigError, match=r"has no task \['news'\]"):
        _trainer(tmp_path, tokenizer, train_dataset={**TRAIN, "news": TRAIN["topic"]})


def test_train_data_missing_a_task_is_refused(tmp_path, tokenizer):
    with pytest.raises(InvalidConfigError, match=r"lacks the task\(s\) \['score'\]"):
        _trainer(tmp_path, tokenizer, train_dataset={k: v for k, v in TRAIN.items() if k != "score"})


def test_an_empty_task_split_is_refused(tmp_path, tokenizer):
    with pytest.raises(InvalidConfigError, match=r"train_dataset\['topic'\] is empty"):
        _trainer(tmp_path, tokenizer, train_dataset={**TRAIN, "topic": TRAIN["topic"].select([])})


def test_a_head_whose_label_count_differs_from_its_task_is_refused(tmp_path, tokenizer):
    wrong = TRAIN["sentiment"].cast_column("labels", ClassLabel(names=["x", "y", "z", "w"]))
    with pytest.raises(InvalidConfigError, match="has 4 classes .* the head of task 'sentiment' has 2"):
        _trainer(tmp_path, tokenizer, train_dataset={**TRAIN, "sentiment": wrong})


def test_class_labels_for_a_regression_head_are_refused(tmp_path, tokenizer):
    with pytest.raises(InvalidConfigError, match="task 'score' has a regression head"):
        _trainer(tmp_path, tokenizer, train_dataset={**TRAIN, "score": TRAIN["sentiment"]})


def test_class_ids_out_of_the_heads_range_are_refused(tmp_path, tokenizer):
    ids = TRAIN["sentiment"].cast_column("labels", Value("int64")).map(lambda row: {"labels": row["labels"] * 5})
    with pytest.raises(InvalidConfigError, match="class ids 0..5 but the head of task 'sentiment' has 2"):
        _trainer(tmp_path, tokenizer, train_dataset={**TRAIN, "sentiment": ids})


def test_metrics_for_an_unknown_task_are_refused(tmp_path, tokenizer):
    with pytest.raises(InvalidConfigError, match=r"compute_metrics names unknown task\(s\) \['news'\]"):
        _trainer(tmp_path, tokenizer, compute_metrics={**METRICS, "news": _accuracy})
