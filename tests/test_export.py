"""Exports: exact zeros in the file, plain from_pretrained, atomic writes, frozen fine-tuning."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, Trainer

from hf_prune import FrozenMaskConfig, PruningCallback, PruningTrainer, RPPConfig, load_pruned, read_report, save_pruned
from hf_prune.export import atomic_directory

from .conftest import tiny_bert, training_args


@pytest.fixture
def pruned(tmp_path, dataset):
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "run", max_steps=12),
        train_dataset=dataset,
        pruning=RPPConfig(target_sparsity=0.8, reweight_interval=3),
    )
    trainer.train()
    return trainer


def _file_sparsity(folder, names):
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    zeros = sum(int((tensors[n] == 0).sum()) for n in names)
    return zeros / sum(tensors[n].numel() for n in names)


def test_dense_export_is_exactly_sparse_and_loads_with_from_pretrained(tmp_path, pruned):
    out = tmp_path / "export"
    report = pruned.save_pruned(out)
    names = [f"{n}.weight" for n in pruned.pruning_method.targets]
    assert _file_sparsity(out, names) == pytest.approx(0.8, abs=1e-3)
    assert report["saved_sparsity"] == pytest.approx(_file_sparsity(out, names))
    assert read_report(out)["method"] == "rpp"
    assert (out / "hf_prune_config.json").is_file()

    reloaded = AutoModelForSequenceClassification.from_pretrained(out)
    one_call = load_pruned(out)
    ids = torch.randint(3, 100, (2, 8))
    pruned.model.eval()
    expected = pruned.model(input_ids=ids).logits
    for model in (reloaded, one_call):
        model.eval()
        torch.testing.assert_close(model(input_ids=ids).logits, expected)


@pytest.mark.parametrize("use_callback", [False, True], ids=["PruningTrainer", "PruningCallback"])
def test_further_fine_tuning_of_an_export_keeps_every_zero(tmp_path, pruned, dataset, use_callback):
    out = tmp_path / "export"
    pruned.save_pruned(out)
    model = AutoModelForSequenceClassification.from_pretrained(out)
    names = [f"{n}.weight" for n in pruned.pruning_method.targets]
    zeros = {n: (w == 0) for n, w in model.state_dict().items() if n in names}
    args = training_args(tmp_path / "ft", max_steps=10, learning_rate=1e-2, weight_decay=0.1)
    if use_callback:
        callback = PruningCallback(FrozenMaskConfig())
        trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[callback])
        method = callback.method
    else:
        trainer = PruningTrainer(model=model, args=args, train_dataset=dataset, pruning=FrozenMaskConfig())
        method = trainer.pruning_method
    before = {n: w.clone() for n, w in model.state_dict().items() if n in names}
    trainer.train()
    after = model.state_dict()
    for name in names:
        assert bool((after[name][zeros[name]] == 0).all()), name
    assert any(not torch.equal(before[n], after[n]) for n in names), "fine-tuning changed nothing"
    # and the promise survives a second export + reload
    save_pruned(model, tmp_path / "export2", method)
    assert _file_sparsity(tmp_path / "export2", names) == pytest.approx(0.8, abs=1e-3)


def test_failed_export_leaves_nothing_behind(tmp_path, pruned):
    out = tmp_path / "export"

    class BrokenTokenizer:
        def save_pretrained(self, path):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_pruned(pruned.model, out, pruned.pruning_method, processing_class=BrokenTokenizer())
    assert not out.exists()
    assert os.listdir(tmp_path) == ["run"], os.listdir(tmp_path)


def test_failed_export_keeps_the_previous_export(tmp_path, pruned):
    out = tmp_path / "export"
    pruned.save_pruned(out)
    first = (out / "model.safetensors").read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as staging:
            open(os.path.join(staging, "partial"), "w").close()
            raise RuntimeError("crash mid-export")
    assert (out / "model.safetensors").read_bytes() == first
    assert not (out / "partial").exists()


def test_unknown_export_format_is_rejected(tmp_path, pruned):
    with pytest.raises(ValueError, match="Unknown export format 'onnx'"):
        pruned.save_pruned(tmp_path / "x", format="onnx")
    assert not (tmp_path / "x").exists()
