"""Saved state and configs that age well: one grouped layout for resume tensors, a layout version
in the state file, the config file and the export manifest, files from older layouts still read,
files from newer ones refused (never misread)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from hf_prune import MagnitudeConfig, MovementConfig, PruningConfig, create_method
from hf_prune.checkpointing import STATE_FILE_NAME, load_method_state, save_method_state
from hf_prune.config import CONFIG_FILE_NAME, CONFIG_VERSION
from hf_prune.errors import CheckpointMismatchError, InvalidConfigError
from hf_prune.formats import ExportFormatError, read_manifest, write_manifest
from hf_prune.state_dicts import flatten_state, load_optimizer_tensors, optimizer_tensors, unflatten_state

from .conftest import tiny_bert


def _movement_mid_schedule():
    model = tiny_bert()
    method = create_method(MovementConfig(begin_step=1, end_step=10))
    method.attach(model)
    method.begin(12)
    ids = torch.randint(3, 100, (4, 12))
    for step in range(1, 4):
        model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
        method.step(step)
        model.zero_grad()
    return model, method


def test_flatten_and_unflatten_are_inverse():
    groups = {"lambdas": torch.zeros(2), "pruned": {"a.b": torch.ones(1), "c": torch.zeros(1)}}
    flat = flatten_state(groups)
    assert sorted(flat) == ["lambdas", "pruned::a.b", "pruned::c"]
    back = unflatten_state(flat)
    assert torch.equal(back["lambdas"], groups["lambdas"]) and sorted(back["pruned"]) == ["a.b", "c"]
    with pytest.raises(ValueError, match="must not contain"):
        flatten_state({"bad::group": torch.zeros(1)})


def test_optimizer_state_round_trips_and_a_foreign_entry_is_refused():
    param = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=0.1)
    param.grad = torch.ones(3)
    optimizer.step()
    saved = optimizer_tensors(optimizer)
    fresh = torch.optim.Adam([torch.zeros(3, requires_grad=True)], lr=0.1)
    load_optimizer_tensors(fresh, saved)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        load_optimizer_tensors(fresh, {"7.exp_avg": torch.zeros(3)})


def test_state_file_records_its_layout_version(tmp_path):
    _, method = _movement_mid_schedule()
    path = save_method_state(method, tmp_path)
    with safe_open(path, framework="pt") as handle:
        assert handle.metadata()["hf_prune_state_version"] == "1"
        assert any(key.startswith("optimizer::0.") for key in handle.keys())


def test_state_file_from_a_newer_hf_prune_is_refused(tmp_path):
    _, method = _movement_mid_schedule()
    path = save_method_state(method, tmp_path)
    with safe_open(path, framework="pt") as handle:
        header = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    header["hf_prune_state_version"] = "99"
    save_file(tensors, path, metadata=header)
    with pytest.raises(CheckpointMismatchError, match="version '99'.*upgrade hf_prune"):
        load_method_state(method, tmp_path)


def test_state_file_written_before_versions_still_resumes(tmp_path):
    """hf_prune 0.1.0 wrote movement's own Adam as ``score_optim::<index>::<field>``, no version."""
    model, method = _movement_mid_schedule()
    groups, metadata = method.state_dict()
    flat = flatten_state({key: value for key, value in groups.items() if key != "optimizer"})
    for key, value in groups["optimizer"].items():
        index, field = key.split(".")
        flat[f"score_optim::{index}::{field}"] = value
    save_file(
        {k: v.contiguous() for k, v in flat.items()},
        str(tmp_path / STATE_FILE_NAME),
        metadata={"hf_prune": json.dumps(metadata)},
    )
    _, other = _movement_mid_schedule()
    torch.manual_seed(1)
    for tensor in other.scores():
        tensor.data.normal_()
    load_method_state(other, tmp_path)
    for a, b in zip(method.scores(), other.scores(), strict=True):
        assert torch.equal(a, b)
    ours, theirs = method.score_optimizer.state_dict()["state"], other.score_optimizer.state_dict()["state"]
    assert torch.equal(ours[0]["exp_avg"], theirs[0]["exp_avg"])


def test_damaged_state_file_is_a_clear_error(tmp_path):
    _, method = _movement_mid_schedule()
    (tmp_path / STATE_FILE_NAME).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointMismatchError, match="not a readable hf_prune state file"):
        load_method_state(method, tmp_path)


def test_config_file_records_its_version_and_newer_ones_are_refused(tmp_path):
    MagnitudeConfig(target_sparsity=0.5).save(tmp_path)
    data = json.loads((tmp_path / CONFIG_FILE_NAME).read_text())
    assert data["hf_prune_config_version"] == CONFIG_VERSION
    assert PruningConfig.load(tmp_path) == MagnitudeConfig(target_sparsity=0.5)
    data["hf_prune_config_version"] = CONFIG_VERSION + 1
    (tmp_path / CONFIG_FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(InvalidConfigError, match="newer than this hf_prune reads"):
        PruningConfig.load(tmp_path)


def test_config_file_without_a_version_is_read_and_unknown_keys_stay_errors(tmp_path):
    (tmp_path / CONFIG_FILE_NAME).write_text(json.dumps({"method": "magnitude", "target_sparsity": 0.7}))
    assert PruningConfig.load(tmp_path).target_sparsity == 0.7
    (tmp_path / CONFIG_FILE_NAME).write_text(json.dumps({"method": "magnitude", "target_sparsity": 0.7, "typo": 1}))
    with pytest.raises(InvalidConfigError, match="Unknown field.*typo"):
        PruningConfig.load(tmp_path)
    with pytest.raises(InvalidConfigError, match="Unknown field.*typo"):
        PruningConfig.from_dict({"method": "magnitude", "typo": 1})


def test_renamed_fields_map_in_old_files_and_are_named_in_user_input(tmp_path):
    from hf_prune import RankConfig

    old, new = next(iter(RankConfig.legacy_field_names.items()))
    (tmp_path / CONFIG_FILE_NAME).write_text(json.dumps({"method": "rank", old: 30, "end_step": 60}))
    assert getattr(PruningConfig.load(tmp_path), new) == 30
    with pytest.raises(InvalidConfigError, match=f"'{old}' is now called '{new}'"):
        PruningConfig.from_dict({"method": "rank", old: 30})


def test_manifest_from_a_newer_layout_is_refused(tmp_path):
    write_manifest(tmp_path, {"format": "dense"})
    data = json.loads((tmp_path / "hf_prune_export.json").read_text())
    assert data["hf_prune_export_version"] == 1
    data["hf_prune_export_version"] = 2
    (tmp_path / "hf_prune_export.json").write_text(json.dumps(data))
    with pytest.raises(ExportFormatError, match="newer than this hf_prune reads"):
        read_manifest(tmp_path)
