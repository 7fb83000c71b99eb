"""Bad recipes and bad command lines: one clear ``error:`` line and exit code 2, before any work.

Every case here was found by trying ``hf-prune`` as a new user would: a typo in a YAML file, a
value of the wrong type, an out-of-range training setting, an ``output_dir`` that holds other
files, a model path that does not exist. Each must fail when the recipe is loaded (so nothing is
trained and lost), say what is wrong, the bad value and the fix, and never print a traceback.
The exports and checkpoints cases are in ``test_bad_input.py``.
"""

from __future__ import annotations

import json
import os

import pytest

from hf_prune.cli import _how_to_load, main
from hf_prune.errors import DataUnavailableError, InvalidConfigError
from hf_prune.export_folder import ExportTargetError
from hf_prune.recipe import Recipe

from . import test_tasks_and_recipes as recipes
from .test_tasks_and_recipes import _write_recipe

fake_data = recipes.fake_data  # the fixtures: a tiny local model folder, a fake VADER data folder
tiny_model_dir = recipes.tiny_model_dir


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Nothing here reads or writes the user's cache (``fake_data`` points the data at its own folder)."""
    monkeypatch.setenv("HF_PRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_PRUNE_DATA_DIR", str(tmp_path / "no-data"))


def _one_error_line(capsys) -> str:
    """The single ``error: ...`` line the CLI printed (no traceback, nothing else on stderr)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def _refused(tmp_path, path, capsys, *fragments: str, error: type[Exception] = InvalidConfigError) -> str:
    """``path`` is refused by ``Recipe.from_yaml`` and by ``hf-prune train`` (exit 2, one line), before work."""
    with pytest.raises(error) as raised:
        Recipe.from_yaml(path)
    for fragment in fragments:
        assert fragment in str(raised.value), str(raised.value)
    assert main(["train", str(path)]) == 2
    line = _one_error_line(capsys)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-work").exists()  # nothing trained
    return line


# --------------------------------------------------------------------------- 1. training fields
@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("max_steps", -5, "> 0"),
        ("max_steps", 0, "> 0"),
        ("learning_rate", 0.0, "> 0"),
        ("learning_rate", -1.0e-5, "> 0"),
        ("per_device_train_batch_size", 0, ">= 1"),
        ("per_device_eval_batch_size", 0, ">= 1"),
        ("gradient_accumulation_steps", 0, ">= 1"),
        ("num_train_epochs", 0, "> 0"),
        ("weight_decay", -0.1, ">= 0"),
        ("logging_steps", 0, "> 0"),
        ("save_steps", -1, "> 0"),
        ("eval_steps", 0, "> 0"),
        ("seed", -1, ">= 0"),
        ("warmup_steps", -0.1, ">= 0"),
    ],
)
def test_out_of_range_training_values_are_refused_when_the_recipe_is_loaded(
    tmp_path, tiny_model_dir, key, value, expected, capsys
):
    path = _write_recipe(tmp_path, tiny_model_dir, training={"max_steps": 12, "use_cpu": True, key: value})
    _refused(tmp_path, path, capsys, f"training.{key}", repr(value), expected)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("learning_rate", "abc", "a number"),
        ("max_steps", 1.5, "an integer"),
        ("use_cpu", "yes", "true or false"),
        ("per_device_train_batch_size", [8], "an integer"),
        ("report_to", 5, "a string"),
    ],
)
def test_training_values_of_the_wrong_type_are_refused(tmp_path, tiny_model_dir, key, value, expected, capsys):
    path = _write_recipe(tmp_path, tiny_model_dir, training={"max_steps": 12, key: value})
    _refused(tmp_path, path, capsys, f"training.{key}", repr(value), expected, "TrainingArguments")


def test_unknown_training_keys_name_the_close_matches(tmp_path, tiny_model_dir, capsys):
    path = _write_recipe(tmp_path, tiny_model_dir, training={"learning_rat": 1.0e-4})
    _refused(tmp_path, path, capsys, "Invalid training arguments", "'learning_rat'", "did you mean 'learning_rate'")
    # removed in transformers 5: the hint names its replacement
    path = _write_recipe(tmp_path, tiny_model_dir, training={"warmup_ratio": 0.1})
    _refused(tmp_path, path, capsys, "'warmup_ratio'", "warmup_steps")
    # the recipe owns the Trainer's output folder
    path = _write_recipe(tmp_path, tiny_model_dir, training={"output_dir": "x"})
    _refused(tmp_path, path, capsys, "training.output_dir", "top-level output_dir")


def test_valid_training_values_are_kept_and_yaml_number_strings_are_read_as_numbers(tmp_path, tiny_model_dir):
    # PyYAML reads 5e-5 (no dot) as a string; it is a number for a number field.
    path = tmp_path / "recipe.yaml"
    _write_recipe(tmp_path, tiny_model_dir)
    text = path.read_text().replace("learning_rate: 0.005", "learning_rate: 5e-5")
    path.write_text(text + "")
    recipe = Recipe.from_yaml(path)
    assert recipe.training["learning_rate"] == 5e-5 and isinstance(recipe.training["learning_rate"], float)
    args = recipe.training_arguments(str(tmp_path / "args"))
    assert args.learning_rate == 5e-5 and args.warmup_steps == 0.1  # the default warmup is a fraction
    # max_steps: -1 (train by epochs) is the TrainingArguments convention and stays allowed
    recipe = Recipe.from_yaml(_write_recipe(tmp_path, tiny_model_dir, training={"max_steps": -1}))
    assert recipe.training_arguments(str(tmp_path / "args")).max_steps == -1


def test_num_train_epochs_alone_trains_by_epochs_not_the_default_step_count(tmp_path, tiny_model_dir):
    recipe = Recipe.from_yaml(_write_recipe(tmp_path, tiny_model_dir, training={"num_train_epochs": 2}))
    args = recipe.training_arguments(str(tmp_path / "args"))
    assert args.num_train_epochs == 2 and args.max_steps == -1  # the default max_steps=600 would win


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"max_length": "abc"}, ["max_length", "'abc'", "an integer"]),
        ({"max_length": 0}, ["max_length", "0", ">= 1"]),
        ({"max_length": True}, ["max_length", "True", "an integer"]),
        ({"dense_baseline": "maybe"}, ["dense_baseline", "'maybe'", "true or false"]),
        ({"output_dir": 5}, ["output_dir", "5", "a string"]),
        ({"model": ["a"]}, ["model", "['a']", "a string"]),
        ({"task": 3}, ["task", "3", "a string"]),
        ({"name": 3}, ["name", "3", "a string"]),
        ({"export_format": 1}, ["export_format", "1", "a string"]),
        ({"pruning": "rpp"}, ["pruning", "'rpp'", "a mapping", "method: rpp"]),
        ({"pruning": {"target_sparsity": 0.8}}, ["pruning", "no 'method'", "rpp"]),
        ({"pruning": {"method": ["rpp"]}}, ["pruning.method", "['rpp']", "a string"]),
        ({"training": [1]}, ["training", "[1]", "a mapping"]),
        ({"baseline_files": "dense.json"}, ["baseline_files", "'dense.json'", "a list of"]),
        ({"baseline_files": [1]}, ["baseline_files", "[1]", "a list of"]),
    ],
)
def test_top_level_recipe_fields_are_type_checked(tmp_path, tiny_model_dir, changes, fragments, capsys):
    _refused(tmp_path, _write_recipe(tmp_path, tiny_model_dir, **changes), capsys, *fragments)


# --------------------------------------------------------------------------- 2. output_dir
def test_an_output_dir_holding_other_files_is_refused_before_training(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    path = _write_recipe(tmp_path, tiny_model_dir)
    with pytest.raises(ExportTargetError, match="not an hf_prune export"):
        Recipe.from_yaml(path)
    assert main(["train", str(path)]) == 2
    line = _one_error_line(capsys)
    assert "output_dir" in line and str(out) in line
    assert (out / "notes.txt").read_text() == "mine" and os.listdir(out) == ["notes.txt"]
    assert not (tmp_path / "out-work").exists()  # nothing was trained
    # only the manifest proves an export: a stray pruning_report.json does not
    (out / "pruning_report.json").write_text("{}")
    with pytest.raises(ExportTargetError, match="hf_prune_export.json"):
        Recipe.from_yaml(path)


def test_an_output_dir_under_a_file_is_refused_before_training(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "afile").write_text("x")
    path = _write_recipe(tmp_path, tiny_model_dir, output_dir=str(tmp_path / "afile" / "out"))
    with pytest.raises(ExportTargetError, match="is a file"):
        Recipe.from_yaml(path)
    assert main(["train", str(path)]) == 2
    assert "output_dir" in _one_error_line(capsys)


def test_an_empty_folder_or_a_previous_export_is_an_acceptable_output_dir(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    out.mkdir()
    Recipe.from_yaml(_write_recipe(tmp_path, tiny_model_dir))
    (out / "hf_prune_export.json").write_text(json.dumps({"format": "dense"}))
    (out / "model.safetensors").write_bytes(b"")
    Recipe.from_yaml(_write_recipe(tmp_path, tiny_model_dir))


# --------------------------------------------------------------------------- 3. the CLI
def _cli_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    return _one_error_line(capsys)


def test_malformed_yaml_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel: [a\n  b: c\n")
    line = _cli_error(capsys, "train", str(path))
    assert str(path) in line and "line 3" in line and "YAML" in line


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "a list"), ("hello\n", "a string"), ("3\n", "an integer")])
def test_a_recipe_file_that_is_not_a_mapping_is_refused(tmp_path, capsys, text, kind):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    line = _cli_error(capsys, "train", str(path))
    assert str(path) in line and kind in line and "mapping" in line and "model:" in line


def test_a_missing_recipe_file_is_named(tmp_path, capsys):
    line = _cli_error(capsys, "train", str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in line and "does not exist" in line and "recipes/" in line
    line = _cli_error(capsys, "train", str(tmp_path))
    assert "is a folder" in line


@pytest.mark.parametrize(
    "setting, fragments",
    [
        ("name.b=1", ["name.b", "'tiny'", "not a mapping", "--set name="]),
        ("pruning.target_sparsity", ["--set", "'pruning.target_sparsity'", "KEY=VALUE"]),
        ("pruning.target_sparsity=[0.9", ["--set", "'[0.9'", "YAML", "quote"]),
        ("=0.9", ["--set", "'=0.9'", "dotted"]),
        ("training..seed=1", ["'training..seed'", "dotted"]),
    ],
)
def test_bad_set_overrides_are_one_line(tmp_path, tiny_model_dir, capsys, setting, fragments):
    path = _write_recipe(tmp_path, tiny_model_dir)
    line = _cli_error(capsys, "train", str(path), "--set", setting)
    for fragment in fragments:
        assert fragment in line, line


def test_set_creates_a_missing_or_empty_mapping(tmp_path, tiny_model_dir):
    path = _write_recipe(tmp_path, tiny_model_dir, training=None)
    recipe = Recipe.from_yaml(path, {"training.max_steps": 7})
    assert recipe.training == {"max_steps": 7}


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"max_length": "abc"}, ["max_length", "'abc'"]),
        ({"training": {"learning_rate": "abc"}}, ["training.learning_rate", "'abc'"]),
        ({"pruning": "rpp"}, ["pruning", "'rpp'"]),
    ],
)
def test_bad_values_in_a_recipe_are_one_line_naming_the_file(tmp_path, tiny_model_dir, capsys, changes, fragments):
    path = _write_recipe(tmp_path, tiny_model_dir, **changes)
    line = _cli_error(capsys, "train", str(path))
    assert str(path) in line
    for fragment in fragments:
        assert fragment in line


def test_report_on_a_folder_that_is_not_an_export(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    line = _cli_error(capsys, "report", str(tmp_path))
    assert str(tmp_path) in line and "pruning_report.json" in line and "not an hf_prune export" in line
    line = _cli_error(capsys, "report", str(tmp_path / "missing"))
    assert "does not exist" in line


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    from hf_prune import MagnitudeConfig, create_method, save_pruned

    from .conftest import tiny_bert

    model = tiny_bert()
    method = create_method(MagnitudeConfig(target_sparsity=0.5, prune_interval=1, begin_step=1, end_step=2))
    method.attach(model)
    method.begin(2)
    for step in (1, 2):
        method.step(step)
    folder = tmp_path_factory.mktemp("export") / "out"
    save_pruned(model, folder, method)
    return folder


def _damaged_copy(source, tmp_path, name, damage):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(source, folder)
    damage(folder / name)
    return folder


@pytest.mark.parametrize(
    "name, damage, fragments",
    [
        (
            "pruning_report.json",
            lambda p: p.write_bytes(p.read_bytes()[:40]),
            ["pruning_report.json", "not valid JSON"],
        ),
        ("pruning_report.json", lambda p: p.write_text("[1]"), ["pruning_report.json", "export the model again"]),
        ("pruning_report.json", lambda p: p.write_text("{}"), ["pruning_report.json", "'method'"]),
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:1000]), ["model.safetensors", "truncated"]),
        ("model.safetensors", os.remove, ["model.safetensors", "missing"]),
    ],
)
def test_report_on_a_truncated_export_is_one_line(small_export, tmp_path, capsys, name, damage, fragments):
    assert main(["report", str(small_export)]) == 0
    capsys.readouterr()
    folder = _damaged_copy(small_export, tmp_path, name, damage)
    line = _cli_error(capsys, "report", str(folder))
    for fragment in fragments:
        assert fragment in line, line


# --------------------------------------------------------------------------- 4. model paths
@pytest.mark.parametrize("model", ["./models/typo", "models/sub/typo", "{tmp}/abs/missing"])
def test_a_missing_local_model_folder_is_named_when_the_recipe_is_loaded(tmp_path, monkeypatch, capsys, model):
    monkeypatch.chdir(tmp_path)
    model = model.format(tmp=tmp_path)
    path = _write_recipe(tmp_path, model)
    line = _refused(tmp_path, path, capsys, repr(model), "local folder", "does not exist", error=DataUnavailableError)
    assert "repo" not in line.lower() and "internet" not in line.lower()


def test_a_folder_without_a_model_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    path = _write_recipe(tmp_path, tmp_path / "empty")
    _refused(tmp_path, path, capsys, "config.json", error=DataUnavailableError)


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache, with the Hub offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    return cache


def test_a_hub_id_that_is_not_cached_while_offline_is_named(tmp_path, offline_hub_cache, capsys):
    path = _write_recipe(tmp_path, "someorg/not-cached-model")
    line = _refused(
        tmp_path,
        path,
        capsys,
        "'someorg/not-cached-model'",
        "offline",
        "HF_HUB_OFFLINE",
        "cache",
        error=DataUnavailableError,
    )
    assert "internet" not in line.lower()


def test_a_hub_id_in_the_local_cache_is_accepted_while_offline(tmp_path, offline_hub_cache, tiny_model_dir):
    repo = offline_hub_cache / "models--someorg--tiny"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    assert Recipe.from_yaml(_write_recipe(tmp_path, "someorg/tiny")).model == "someorg/tiny"


# --------------------------------------------------------------------------- 5. the closing line
def test_the_closing_line_of_a_compact_export_does_not_recommend_plain_from_pretrained(
    tmp_path, fake_data, tiny_model_dir, capsys
):
    path = _write_recipe(tmp_path, tiny_model_dir, export_format="compact", dense_baseline=False)
    assert main(["train", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    closing, publish = lines[-2], lines[-1]
    out = str(tmp_path / "out")
    assert publish.startswith(f"To publish it (model card included): hf-prune push {out} <owner/name>")
    assert closing.startswith(f"Pruned model saved to {out};")
    assert f"hf_prune.load_pruned({out!r})" in closing
    assert f"from_pretrained({out!r}, trust_remote_code=True)" in closing
    assert f"from_pretrained({out!r})" not in closing
    assert closing == f"Pruned model saved to {out}; {_how_to_load(out, 'compact')}"
    from hf_prune import load_pruned

    load_pruned(out)  # the line's first suggestion works
    # a dense export may be loaded with plain from_pretrained, and the line says so
    assert f"from_pretrained({out!r})" in _how_to_load(out, "dense")
