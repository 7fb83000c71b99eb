"""Export specifics: atomic writes, refused formats, and what the report records.

Exact zeros in the file, loading back (plain ``from_pretrained`` for dense) and frozen
fine-tuning of an export are contracts for every method and format (``tests/test_contract.py``).
"""

from __future__ import annotations

import os

import pytest

from hf_prune import PruningTrainer, RPPConfig, save_pruned
from hf_prune.export import atomic_directory

from .common import magnitude_pruned, tiny_bert, training_args


def test_failed_export_leaves_nothing_behind(tmp_path):
    model, method = magnitude_pruned()
    out = tmp_path / "export"

    class BrokenTokenizer:
        def save_pretrained(self, path):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_pruned(model, out, method, processing_class=BrokenTokenizer())
    assert not out.exists()
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)


def test_failed_export_keeps_the_previous_export(tmp_path):
    model, method = magnitude_pruned()
    out = tmp_path / "export"
    save_pruned(model, out, method)
    first = (out / "model.safetensors").read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as staging:
            open(os.path.join(staging, "partial"), "w").close()
            raise RuntimeError("crash mid-export")
    assert (out / "model.safetensors").read_bytes() == first
    assert not (out / "partial").exists()


def test_unknown_export_format_is_rejected(tmp_path, dataset):
    trainer = PruningTrainer(
        model=tiny_bert(), args=training_args(tmp_path / "run"), train_dataset=dataset, pruning=RPPConfig()
    )
    with pytest.raises(ValueError, match="Unknown export format 'onnx'"):
        trainer.save_pruned(tmp_path / "x", format="onnx")
    assert not (tmp_path / "x").exists()
