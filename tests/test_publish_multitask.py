"""Publishing a multitask export (shared encoder + one stock export per task under ``tasks/``)
to the local test Hub and loading it back by repo id: the whole model, and each task's model by
``subfolder``. Also: the export's manifest lists the files below ``tasks/`` (what ``push_pruned``
uploads and checks), and a re-export keeps files a user added anywhere in the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_prune import load_pruned, save_pruned
from hf_prune.formats import ExportFormatError, MissingExportFileError, read_manifest
from hf_prune.hub import push_pruned
from hf_prune.multitask import MultitaskModel

from .common import logits, magnitude_pruned, tiny_bert, tiny_multitask
from .hub_server import HubServer
from .test_publish import REPO, repo_files

TASKS = ("sentiment", "topic")


def multitask_export(folder: Path, fmt: str = "dense") -> MultitaskModel:
    """A tiny two-task model, half its encoder zeroed by magnitude, exported in ``fmt``."""
    model, method = magnitude_pruned(tiny_multitask(), 0.5)
    save_pruned(model, folder, method, format=fmt)
    return model


def task_logits(model: MultitaskModel, name: str) -> torch.Tensor:
    return logits(model.task_model(name))


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_the_manifest_lists_every_file_of_the_task_exports(tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "export"
    multitask_export(folder, fmt)
    manifest = read_manifest(str(folder))
    assert manifest is not None
    on_disk = sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*") if p.is_file())
    assert manifest["files"] == on_disk
    assert "tasks" not in manifest["files"]  # files, not the folder: the Hub's names for them
    for name in TASKS:
        assert f"tasks/{name}/README.md" in manifest["files"]


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_a_multitask_export_round_trips_through_the_hub(local_hub: HubServer, tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "export"
    multitask_export(folder, fmt)
    local = load_pruned(folder)
    assert isinstance(local, MultitaskModel)

    push_pruned(folder, REPO)
    files = repo_files(REPO)
    assert {f"tasks/{name}/{file}" for name in TASKS for file in ("config.json", "README.md")} <= files
    assert read_manifest(str(folder))["files"] == sorted(files - {".gitattributes"})

    remote = load_pruned(REPO)  # the class the manifest names, not the config's "architectures"
    assert isinstance(remote, MultitaskModel)
    assert torch.equal(logits(remote), logits(local))
    for name in TASKS:
        by_subfolder = load_pruned(REPO, subfolder=f"tasks/{name}")
        assert torch.equal(logits(by_subfolder), task_logits(local, name))
        if fmt == "dense":  # a task's dense model is a stock one: no hf_prune needed to load it
            stock = AutoModelForSequenceClassification.from_pretrained(REPO, subfolder=f"tasks/{name}")
            assert torch.equal(logits(stock), task_logits(local, name))


def test_re_pushing_an_unchanged_multitask_export_makes_no_commit(local_hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    multitask_export(folder)
    first = push_pruned(folder, REPO)
    commits = len(local_hub.commits(REPO, "main"))
    again = push_pruned(folder, REPO)
    assert len(local_hub.commits(REPO, "main")) == commits
    assert again.oid == first.oid


def test_a_single_task_export_pushed_over_a_multitask_one_removes_its_task_folders(
    local_hub: HubServer, tmp_path: Path
) -> None:
    multitask = tmp_path / "multitask"
    multitask_export(multitask)
    push_pruned(multitask, REPO)
    single = tmp_path / "single"
    model, method = magnitude_pruned(tiny_bert(), 0.5)
    save_pruned(model, single, method)
    push_pruned(single, REPO)
    assert not any(name.startswith("tasks/") for name in repo_files(REPO))
    assert torch.equal(logits(load_pruned(REPO)), logits(load_pruned(single)))


def test_a_missing_task_file_is_found_before_anything_is_pushed(local_hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    multitask_export(folder)
    (folder / "tasks" / "topic" / "model.safetensors").unlink()
    with pytest.raises(MissingExportFileError, match="tasks/topic/model.safetensors"):
        push_pruned(folder, REPO)
    assert not any(r for r in local_hub.requests if r[0] in ("POST", "PUT", "DELETE"))


def test_a_damaged_task_weights_file_is_found_before_anything_is_pushed(local_hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    multitask_export(folder, "compact")
    weights = next((folder / "tasks" / "topic").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor: the file still parses, its checksum does not match
    weights.write_bytes(bytes(data))
    with pytest.raises(ExportFormatError, match="tasks/topic"):
        push_pruned(folder, REPO)
    assert not any(r for r in local_hub.requests if r[0] in ("POST", "PUT", "DELETE"))


def test_re_exporting_keeps_a_file_the_user_added_inside_a_task_folder(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    multitask_export(folder)
    notes = folder / "tasks" / "topic" / "NOTES.md"
    notes.write_text("evaluated by hand on 2026-12-01")
    (folder / "mine").mkdir()
    (folder / "mine" / "eval.csv").write_text("a,b\n")

    multitask_export(folder, "compact")
    assert notes.read_text() == "evaluated by hand on 2026-12-01"
    assert (folder / "mine" / "eval.csv").read_text() == "a,b\n"
    assert "tasks/topic/NOTES.md" not in read_manifest(str(folder))["files"]


def test_re_exporting_a_single_task_model_over_a_multitask_export_drops_its_task_folders(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    multitask_export(folder)
    model, method = magnitude_pruned(tiny_bert(), 0.5)
    save_pruned(model, folder, method)
    assert not (folder / "tasks").exists()
