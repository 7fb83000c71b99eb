"""MultitaskCollator: padding, task ids, text pairs, classification and regression labels."""

from __future__ import annotations

import pytest
import torch
from transformers import BertTokenizerFast

from hf_prune.errors import InvalidConfigError, MissingColumnError
from hf_prune.multitask.collator import MultitaskCollator
from hf_prune.multitask.sampling import MultitaskBatchSampler, TaskMixture

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "very", "not", "a", "?", "is", "it"]


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizerFast:
    # A 14-word vocabulary: builds in milliseconds, no files, no network.
    return BertTokenizerFast(vocab={word: i for i, word in enumerate(WORDS)})


def row(tokenizer, text, pair=None, *, label=None, task=0, **extra):
    features = dict(tokenizer(text, pair) if pair is not None else tokenizer(text))
    if label is not None:
        features["label"] = label
    if task is not None:
        features["task_ids"] = task
    return {**features, **extra}


def test_single_texts_are_padded_to_the_longest_row(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"])
    batch = collate([row(tokenizer, "good film", label=1), row(tokenizer, "a very bad film is it", label=0)])
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][0].tolist() == [2, 5, 7, 3, 0, 0, 0, 0]  # [CLS] good film [SEP] + padding
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert batch["task_ids"].tolist() == [0, 0] and batch["task_ids"].dtype == torch.int64


def test_text_pairs_keep_their_segments(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification", "classification"])
    batch = collate([row(tokenizer, "good", "very good", label=1, task=1), row(tokenizer, "bad", label=0, task=0)])
    assert batch["input_ids"][0].tolist() == [2, 5, 3, 8, 5, 3]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0]
    assert batch["task_ids"].tolist() == [1, 0]


def test_mixed_classification_and_regression_give_float_labels(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification", "regression"])
    batch = collate(
        [
            row(tokenizer, "good film", label=1, task=0),
            row(tokenizer, "bad", "not good", label=0.25, task=1),
            {**row(tokenizer, "it is", task=1), "labels": 3.5},  # `labels` works as well as `label`
        ]
    )
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"].tolist() == [1.0, 0.25, 3.5]
    assert batch["task_ids"].tolist() == [0, 1, 1]


def test_classification_only_gives_int64_labels_even_for_a_regression_free_mixed_batch(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification", "classification"])
    batch = collate([row(tokenizer, "good", label=2, task=0), row(tokenizer, "bad", label=1, task=1)])
    assert batch["labels"].dtype == torch.int64
    # Regression anywhere in the run: float32 even for a batch of only classification rows, so
    # the label dtype does not change from step to step.
    batch = MultitaskCollator(tokenizer, ["classification", "regression"])([row(tokenizer, "good", label=1)])
    assert batch["labels"].dtype == torch.float32


def test_rows_tokenized_without_token_type_ids_mix_with_pairs(tokenizer):
    single = {**tokenizer("good film", return_token_type_ids=False), "label": 1, "task_ids": 0}
    collate = MultitaskCollator(tokenizer, ["classification", "regression"])
    batch = collate([single, row(tokenizer, "bad", "very bad", label=0.5, task=1)])
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]]


def test_pad_to_multiple_of(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"], pad_to_multiple_of=8)
    assert collate([row(tokenizer, "good film is a very good film", label=1)])["input_ids"].shape == (1, 16)


def test_rows_without_labels_give_no_labels_and_task_id_alias(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification", "regression"])
    batch = collate([row(tokenizer, "good", task=None, task_id=1), row(tokenizer, "bad", task=0)])
    assert "labels" not in batch and "task_id" not in batch
    assert batch["task_ids"].tolist() == [1, 0]


def test_missing_task_id_says_how_to_add_the_column(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"])
    with pytest.raises(MissingColumnError, match=r"Row 1 of the batch has no 'task_ids'.*add_column\('task_ids'"):
        collate([row(tokenizer, "good", label=1), row(tokenizer, "bad", label=0, task=None)])


def test_task_id_out_of_range(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification", "regression"])
    with pytest.raises(InvalidConfigError, match=r"task_ids=2.*knows 2 task\(s\)"):
        collate([row(tokenizer, "good", label=1, task=2)])


def test_labels_on_some_rows_only(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"])
    with pytest.raises(MissingColumnError, match=r"Rows \[1\] of the batch have no 'label'"):
        collate([row(tokenizer, "good", label=1), row(tokenizer, "bad")])


def test_columns_in_some_rows_only_are_named(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"])
    with pytest.raises(MissingColumnError, match=r"\['special_tokens_mask'\]"):
        collate([row(tokenizer, "good", label=1, special_tokens_mask=[1, 0, 1]), row(tokenizer, "bad", label=0)])


def test_empty_batch_and_untokenized_rows(tokenizer):
    collate = MultitaskCollator(tokenizer, ["classification"])
    with pytest.raises(InvalidConfigError, match="empty batch"):
        collate([])
    with pytest.raises(MissingColumnError, match="no 'input_ids'"):
        collate([row(tokenizer, "good", label=1), {"text": "bad", "label": 0, "task_ids": 0}])


@pytest.mark.parametrize(
    ("task_types", "kwargs", "message"),
    [
        (["classification", "regresion"], {}, r"\[\(1, 'regresion'\)\]"),
        ([], {}, r"task_types=\[\]"),
        ("classification", {}, "task_types='classification'"),
        (["classification"], {"pad_to_multiple_of": 0}, "pad_to_multiple_of=0"),
    ],
)
def test_bad_collator_arguments(tokenizer, task_types, kwargs, message):
    with pytest.raises(InvalidConfigError, match=message):
        MultitaskCollator(tokenizer, task_types, **kwargs)


def test_mixed_batches_from_the_sampler_through_a_dataloader(tokenizer):
    # Task 0: single texts with class labels; task 1: text pairs with scores.
    sentiment = [row(tokenizer, text, label=i % 2, task=0) for i, text in enumerate(["good", "bad film", "not good"])]
    similarity = [
        row(tokenizer, a, b, label=s, task=1) for a, b, s in [("good", "very good", 0.9), ("bad", "good film", 0.1)]
    ]
    dataset = torch.utils.data.ConcatDataset([sentiment, similarity])
    sampler = MultitaskBatchSampler(
        {"sentiment": 3, "similarity": 2}, batch_size=4, mixture=TaskMixture(batches="mixed"), num_batches=5
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=MultitaskCollator(tokenizer, ["classification", "regression"])
    )
    for indices, batch in zip(sampler, loader):
        expected = [0 if sampler.task_of(i) == "sentiment" else 1 for i in indices]
        assert batch["task_ids"].tolist() == expected
        assert batch["labels"].dtype == torch.float32
        assert batch["input_ids"].shape[0] == 4
