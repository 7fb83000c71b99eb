"""Multitask recipes: the shipped mixtures load, a mixture runs end to end through the CLI on a tiny
model, and every bad task list or mixture fails with a clear error before any data or model is read."""

from __future__ import annotations

import glob
import json
import os

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from hf_prune.cli import main
from hf_prune.errors import InvalidConfigError
from hf_prune.recipe import Recipe

from .test_tasks_and_recipes import fake_data, tiny_model_dir  # noqa: F401  (fixtures)

RECIPES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(RECIPES, "*.yaml"))), ids=os.path.basename)
def test_every_shipped_recipe_loads(path):
    recipe = Recipe.from_yaml(path, {"output_dir": "/tmp/hf-prune-recipe-check"})
    assert recipe.task_names


def test_the_shipped_mixtures_cover_what_the_issue_asks_for():
    recipes = {
        os.path.basename(p): Recipe.from_yaml(p, {"output_dir": "/tmp/hf-prune-recipe-check"})
        for p in glob.glob(os.path.join(RECIPES, "*.yaml"))
    }
    mixtures = [r for r in recipes.values() if r.is_multitask]
    tasks = [{t.name: t for t in r.task_objects()} for r in mixtures]
    assert any(all(name.endswith("sentiment") for name in t) for t in tasks)  # a sentiment mixture
    assert any("bbc_topic" in t and any("sentiment" in n for n in t) for t in tasks)  # sentiment + topic
    assert any(any(task.task_type == "regression" for task in t.values()) for t in tasks)  # regression
    assert any(entry.max_train_examples for r in mixtures for entry in r.task_entries)  # low-resource
    assert not recipes["movie_sentiment_rpp.yaml"].is_multitask  # the single-task example stays


def _csv_task(tmp_path) -> dict:
    rows = ["review,stars"] + [f"{'good great' if i % 2 else 'bad awful'} movie {i % 7},{i % 2}" for i in range(60)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows))
    return {
        "name": "my_reviews",
        "files": "reviews.csv",  # relative to the recipe file
        "text_columns": ["review"],
        "label_column": "stars",
        "task_type": "classification",
        "label_names": ["negative", "positive"],
    }


def _write_mixture(tmp_path, model_dir, **changes):
    recipe = {
        "name": "tiny_mix",
        "model": str(model_dir),
        "tasks": ["movie_sentiment", {"name": "tweet_sentiment", "max_train_examples": 40}, _csv_task(tmp_path)],
        "mixture": {"sampling": "temperature", "temperature": 2.0},
        "max_length": 16,
        "output_dir": str(tmp_path / "out"),
        "dense_baseline": True,
        "pruning": {"method": "magnitude", "target_sparsity": 0.75, "prune_interval": 1},
        "training": {
            "max_steps": 8,
            "per_device_train_batch_size": 8,
            "learning_rate": 5e-3,
            "logging_steps": 4,
            "use_cpu": True,
            "disable_tqdm": True,
        },
    }
    recipe.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_cli_trains_a_mixture_and_exports_one_model_per_task(tmp_path, fake_data, tiny_model_dir, capsys):  # noqa: F811
    path = _write_mixture(tmp_path, tiny_model_dir)
    assert main(["train", str(path), "--set", "mixture.temperature=3"]) == 0
    printed = capsys.readouterr().out
    assert "| movie_sentiment accuracy | tweet_sentiment accuracy | my_reviews accuracy | average |" in printed
    assert "| dense multitask |" in printed and "| magnitude @ 0.75 multitask |" in printed
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"] == ["movie_sentiment", "tweet_sentiment", "my_reviews"]
    assert results["mixture"]["temperature"] == 3
    assert set(results["pruned"]["metrics"]) >= {"test_my_reviews_accuracy", "test_average"}
    encoders = []
    for name in results["tasks"]:
        folder = out / "tasks" / name
        tensors = load_file(folder / "model.safetensors")
        query = tensors["bert.encoder.layer.0.attention.self.query.weight"]
        assert float((query == 0).float().mean()) == pytest.approx(0.75, abs=1e-3)
        encoders.append({k: v for k, v in tensors.items() if k.startswith("bert.")})
        assert (
            type(AutoModelForSequenceClassification.from_pretrained(folder)).__name__ == "BertForSequenceClassification"
        )
    assert all(set(e) == set(encoders[0]) and all(torch.equal(e[k], encoders[0][k]) for k in e) for e in encoders)
    # The card of the shared model lists every task's result.
    card = (out / "README.md").read_text()
    assert all(name in card for name in results["tasks"])
    # A second run with the same settings reuses the cached dense multitask baseline.
    assert main(["train", str(path), "--set", "mixture.temperature=3"]) == 0
    assert "dense multitask (cached" in capsys.readouterr().out


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tasks": ["movie_sentiment", "squad"]}, "unknown task 'squad'.*Named tasks: offline"),
        ({"tasks": ["movie_sentiment", "movie_sentiment"]}, "'movie_sentiment' appears twice"),
        ({"tasks": []}, "expected a list of tasks"),
        ({"task": "movie_sentiment"}, "either task.*or tasks.*not both"),
        ({"mixture": {"sampling": "temperature", "temperature": 0}}, "temperature=0 must be > 0"),
        ({"mixture": {"sampling": "temperture"}}, "not one of"),
        ({"mixture": {"weights": {"movie_sentiment": 0, "tweet_sentiment": 0, "my_reviews": 0}}}, "not positive"),
        ({"mixture": {"weights": {"movie_sentiment": 1, "news": 1}}}, r"names task\(s\) \['news'\]"),
        ({"mixture": {"weights": {"movie_sentiment": 1}}}, r"no weight for task\(s\)"),
        ({"mixture": "uniform"}, "expected a mapping"),
        (
            {
                "tasks": [
                    "movie_sentiment",
                    {"name": "x", "files": "missing.csv", "text_columns": ["t"], "task_type": "classification"},
                ]
            },
            "missing.csv",
        ),
        (
            {"tasks": ["movie_sentiment", {"name": "x", "files": "reviews.csv", "task_type": "classification"}]},
            "has no text_columns",
        ),
        (
            {
                "tasks": [
                    "movie_sentiment",
                    {
                        "name": "movie_sentiment",
                        "files": "reviews.csv",
                        "text_columns": ["review"],
                        "task_type": "classification",
                    },
                ]
            },
            "name of a built-in task",
        ),
        ({"tasks": ["movie_sentiment", {"name": "nyt_sentiment", "max_train_examples": 0}]}, "max_train_examples 0"),
        ({"tasks": ["movie_sentiment", {"name": "nyt_sentiment", "text_columns": ["x"]}]}, "but no data"),
        (
            {"tasks": ["movie_sentiment", {"name": "nyt_sentiment", "max_examples": 5}]},
            "unknown key.*max_train_examples",
        ),
        ({"tasks": ["movie_sentiment", 5]}, r"tasks\[1\]: 5 is an integer"),
    ],
)
def test_bad_task_lists_and_mixtures_fail_before_anything_is_loaded(tmp_path, tiny_model_dir, changes, message, capsys):  # noqa: F811
    _csv_task(tmp_path)  # writes reviews.csv
    path = _write_mixture(tmp_path, tiny_model_dir, **changes)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_regression_task_given_a_classification_metric_is_refused(tmp_path, tiny_model_dir):  # noqa: F811
    task = {**_csv_task(tmp_path), "task_type": "regression", "metrics": ["accuracy"]}
    task.pop("label_names")
    path = _write_mixture(tmp_path, tiny_model_dir, tasks=["movie_sentiment", task])
    with pytest.raises(InvalidConfigError, match="accuracy"):
        Recipe.from_yaml(path)


def test_a_recipe_needs_task_or_tasks(tmp_path, tiny_model_dir):  # noqa: F811
    path = _write_mixture(tmp_path, tiny_model_dir)
    data = yaml.safe_load(path.read_text())
    del data["tasks"], data["mixture"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidConfigError, match=r"missing required recipe key\(s\) \['task \(or tasks\)'\]"):
        Recipe.from_yaml(path)


def test_a_mixture_without_tasks_is_refused(tmp_path, tiny_model_dir):  # noqa: F811
    path = _write_mixture(tmp_path, tiny_model_dir)
    data = yaml.safe_load(path.read_text())
    data["task"] = data.pop("tasks")[0]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidConfigError, match="mixture applies to a multitask recipe"):
        Recipe.from_yaml(path)
