"""Offline tasks (on a fake VADER file), recipes and the CLI, end to end on a tiny model."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, BertTokenizerFast

from hf_prune.cli import main
from hf_prune.errors import InvalidConfigError
from hf_prune.recipe import Recipe
from hf_prune.tasks import load_task
from hf_prune.tasks.vader import SUBSETS

from .common import tiny_bert

WORDS = ["good", "great", "fine", "bad", "awful", "dull", "movie", "plot", "actors", "the"]


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    """A VADER-format folder with 200 rows per subset, and HF_PRUNE_DATA_DIR pointing at it."""
    folder = tmp_path / "data" / "hutto_ICWSM_2014"
    folder.mkdir(parents=True)
    for subset, name in SUBSETS.items():
        lines = []
        for i in range(200):
            score = [-2.5, -0.2, 0.3, 1.8][i % 4]
            word = WORDS[i % 3] if score > 0 else WORDS[3 + i % 3]
            lines.append(f"{i}\t{score}\tthe {word} {subset} {WORDS[6 + i % 4]}\r\n")
        (folder / name).write_text("".join(lines), encoding="latin-1")
    monkeypatch.setenv("HF_PRUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_PRUNE_CACHE", str(tmp_path / "cache"))
    return folder


def test_task_split_filters_near_neutral_rows_and_is_seeded(fake_data):
    data = load_task("movie_sentiment")
    assert sum(map(len, data.values())) == 100  # |score| >= 0.5 keeps half the rows
    assert (len(data["test"]), len(data["validation"])) == (20, 8)  # validation: 10% of the other 80
    assert set(data["train"]["label"]) == {0, 1}
    assert data["train"].features["label"].names == ["negative", "positive"]
    assert load_task("movie_sentiment")["test"]["text"] == data["test"]["text"]


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="available tasks"):
        load_task("squad")


@pytest.fixture
def tiny_model_dir(tmp_path):
    folder = tmp_path / "tiny-model"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *SUBSETS]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    tiny_bert().save_pretrained(folder)
    return folder


def _write_recipe(tmp_path, model_dir, **changes):
    recipe = {
        "name": "tiny",
        "model": str(model_dir),
        "task": "movie_sentiment",
        "max_length": 16,
        "output_dir": str(tmp_path / "out"),
        "dense_baseline": True,
        "pruning": {"method": "rpp", "target_sparsity": 0.8, "reweight_interval": 3},
        "training": {
            "max_steps": 12,
            "per_device_train_batch_size": 8,
            "learning_rate": 5e-3,
            "logging_steps": 4,
            "use_cpu": True,
        },
    }
    recipe.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cli_train_runs_a_recipe_end_to_end(tmp_path, fake_data, tiny_model_dir, capsys):
    path = _write_recipe(tmp_path, tiny_model_dir)
    assert main(["train", str(path), "--set", "pruning.target_sparsity=0.7"]) == 0
    printed = capsys.readouterr().out
    assert "| rpp @ 0.7 |" in printed and "| dense |" in printed
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["pruned"]["saved_sparsity"] == pytest.approx(0.7, abs=1e-3)
    tensors = load_file(os.path.join(out, "model.safetensors"))
    query = tensors["bert.encoder.layer.0.attention.self.query.weight"]
    assert float((query == 0).float().mean()) == pytest.approx(0.7, abs=1e-3)
    AutoModelForSequenceClassification.from_pretrained(out)
    # the second run reuses the cached dense baseline
    assert main(["train", str(path)]) == 0
    assert "dense (cached" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["sparsity_of_pruned_weights_in_file"] == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"task": "squad"}, "task: unknown task 'squad'"),
        ({"pruning": {"method": "rpp", "target_sparsity": 1.2}}, "target_sparsity"),
        ({"pruning": {"method": "prune_everything"}}, "Unknown pruning method"),
        ({"trainning": {}}, "unknown recipe key"),
        ({"training": {"max_stepz": 3}}, "Invalid training arguments"),
        ({"export_format": "onnx"}, "export_format"),
    ],
)
def test_bad_recipes_fail_before_training(tmp_path, tiny_model_dir, changes, message, capsys):
    path = _write_recipe(tmp_path, tiny_model_dir, **changes)
    with pytest.raises(InvalidConfigError if "method" not in message else KeyError, match=message):
        Recipe.from_yaml(path)
    assert main(["train", str(path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
