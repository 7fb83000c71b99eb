"""Shared fixtures: tiny randomly initialised encoders and a small learnable dataset."""

from __future__ import annotations

import os

import pytest
import torch
from datasets import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    TrainingArguments,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VOCAB = 100
SEQ = 12


def tiny_bert(seed: int = 0, num_layers: int = 2) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def tiny_roberta(seed: int = 0) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    return RobertaForSequenceClassification(config)


def tiny_distilbert(seed: int = 0) -> DistilBertForSequenceClassification:
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, num_labels=2
    )
    return DistilBertForSequenceClassification(config)


def tiny_electra(seed: int = 0) -> ElectraForSequenceClassification:
    torch.manual_seed(seed)
    config = ElectraConfig(
        vocab_size=VOCAB,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    return ElectraForSequenceClassification(config)


ARCHITECTURES = {
    "bert": tiny_bert,
    "roberta": tiny_roberta,
    "distilbert": tiny_distilbert,
    "electra": tiny_electra,
}


def tiny_dataset(n: int = 64, seed: int = 0) -> Dataset:
    """Token sequences whose label is whether token 7 appears: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (n, SEQ), generator=generator)
    ids[: n // 2, 3] = 7
    labels = (ids == 7).any(dim=1).long()
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n, "labels": labels.tolist()})


def training_args(output_dir, **overrides) -> TrainingArguments:
    defaults = dict(
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


@pytest.fixture
def dataset() -> Dataset:
    return tiny_dataset()
