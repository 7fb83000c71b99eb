"""Publishing loose ends (issue 11), against the local test Hub (``tests/hub_server.py``):

- a masks export loads its base model with the caller's ``token`` / ``cache_dir`` and at the
  base model's recorded commit, and says clearly when the base model cannot be loaded;
- the base model's commit is recorded where it is known (a Hub cache snapshot folder);
- ``push_pruned(..., run_as_future=True)`` pushes in the background and returns a ``Future``.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants, snapshot_download
from transformers import BertForSequenceClassification

from hf_prune import MagnitudeConfig, PruningTrainer, load_pruned
from hf_prune.errors import DataUnavailableError, InvalidConfigError
from hf_prune.formats import MissingExportFileError, load_export, read_manifest
from hf_prune.formats.masks import base_model_hub_kwargs
from hf_prune.hub import HubPushError, push_pruned
from hf_prune.pretrained import base_model_id, hub_snapshot

from .common import tiny_bert, tiny_dataset, training_args
from .hub_server import TOKEN, USER, HubServer
from .test_publish import (
    REPO,
    backbone,
    folder_bytes,
    local_base,
    magnitude_export,
    repo_files,
    same_logits,
)

BASE_REPO = f"{USER}/tiny-base"
SHA = "0123456789abcdef0123456789abcdef01234567"


def upload_base(tmp_path: Path, seed: int = 0, private: bool = False) -> str:
    """Push a tiny BERT (``seed``) to BASE_REPO; returns the commit."""
    folder = tmp_path / f"upload-{seed}"
    tiny_bert(seed).save_pretrained(folder)
    api = HfApi()
    api.create_repo(BASE_REPO, private=private, exist_ok=True)
    return api.upload_folder(repo_id=BASE_REPO, folder_path=folder, commit_message=f"seed {seed}").oid


def snapshot_base(tmp_path: Path) -> BertForSequenceClassification:
    """BASE_REPO loaded from its snapshot folder in a cache of its own (what a user gets from
    ``from_pretrained(snapshot_download(repo))``), not from the default cache."""
    path = snapshot_download(BASE_REPO, cache_dir=tmp_path / "exporter-cache")
    return BertForSequenceClassification.from_pretrained(path)


def cached_repos(cache: Path | str) -> set[str]:
    return {p.name for p in Path(cache).glob("models--*")} if Path(cache).is_dir() else set()


# ------------------------------------------------------------------- base model id and revision
def test_a_hub_cache_snapshot_folder_maps_back_to_its_repo_and_commit(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--me--tiny" / "snapshots" / SHA
    assert hub_snapshot(str(snapshot)) == ("me/tiny", SHA)
    assert hub_snapshot(str(tmp_path / "hub" / "models--bert-base" / "snapshots" / SHA)) == ("bert-base", SHA)
    assert hub_snapshot(str(snapshot) + os.sep) == ("me/tiny", SHA)
    # Not a model snapshot folder: left as the path it is.
    assert hub_snapshot(str(snapshot / "subfolder")) is None
    assert hub_snapshot(str(tmp_path / "hub" / "datasets--me--tiny" / "snapshots" / SHA)) is None
    assert hub_snapshot(str(tmp_path / "hub" / "models--me--tiny" / "snapshots" / "main")) is None
    assert hub_snapshot(str(tmp_path / "my-model")) is None

    model = tiny_bert()
    model.config._name_or_path = str(snapshot)
    assert base_model_id(model) == ("me/tiny", SHA)
    model.config._name_or_path = "me/tiny"  # loaded by id: transformers 5 keeps no commit
    assert base_model_id(model) == ("me/tiny", None)


def test_a_model_loaded_by_hub_id_records_no_commit_anywhere(local_hub: HubServer, tmp_path: Path) -> None:
    # Why base_model_id cannot pin a model loaded by id: transformers 5 resolves the revision to a
    # commit for the download, but keeps neither on the model nor on its config. If this starts to
    # fail, transformers records it again: read it in base_model_id.
    commit = upload_base(tmp_path)
    for revision in ("main", commit):
        model = BertForSequenceClassification.from_pretrained(BASE_REPO, revision=revision)
        assert model.config._name_or_path == BASE_REPO
        assert commit not in repr(sorted(vars(model.config).items())) + repr(sorted(vars(model).items()))
        assert base_model_id(model) == (BASE_REPO, None)


def test_a_masks_export_of_a_snapshot_loads_the_base_model_at_its_commit(local_hub: HubServer, tmp_path: Path) -> None:
    first = upload_base(tmp_path, seed=0)
    base = snapshot_base(tmp_path)
    expected = backbone(base)
    folder = magnitude_export(base, tmp_path / "export", "masks")
    manifest = read_manifest(str(folder))
    assert manifest is not None
    assert (manifest["base_model"], manifest["base_model_revision"]) == (BASE_REPO, first)

    upload_base(tmp_path, seed=1)  # the base repo moves on: other weights on main

    loaded = load_export(folder, manifest)
    zeros = 0
    for name, value in backbone(loaded).items():
        kept = value != 0
        assert torch.equal(value, expected[name] * kept), name  # the seed-0 weights the pattern was found on
        zeros += int((~kept).sum())
    assert zeros > 0
    latest = load_export(folder, manifest, revision="main")  # an explicit revision wins
    assert not torch.equal(
        backbone(latest)["bert.encoder.layer.0.attention.self.query.weight"],
        backbone(loaded)["bert.encoder.layer.0.attention.self.query.weight"],
    )


# ---------------------------------------------------------------- base model: token and cache_dir
def private_masks_export(local_hub: HubServer, tmp_path: Path) -> Path:
    """A masks export (pushed to the private REPO) whose base model is the private BASE_REPO."""
    upload_base(tmp_path, private=True)
    folder = magnitude_export(snapshot_base(tmp_path), tmp_path / "export", "masks")
    push_pruned(folder, REPO, private=True)
    return folder


def test_the_base_model_of_a_masks_export_loads_with_the_given_token_and_cache(
    local_hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = private_masks_export(local_hub, tmp_path)
    manifest = read_manifest(str(folder))
    assert manifest is not None
    reference = load_export(folder, manifest, cache_dir=str(tmp_path / "reference-cache"))  # with HF_TOKEN
    monkeypatch.delenv("HF_TOKEN")  # the token is now only what the caller passes

    with pytest.raises(DataUnavailableError) as refused:
        load_export(folder, manifest)
    message = str(refused.value)
    assert BASE_REPO in message and "masks export" in message and "token=" in message
    assert TOKEN not in message

    cache = tmp_path / "other-cache"
    loaded = load_export(folder, manifest, token=TOKEN, cache_dir=str(cache))
    assert all(torch.equal(value, backbone(reference)[name]) for name, value in backbone(loaded).items())
    assert f"models--{USER}--tiny-base" in cached_repos(cache)

    # Offline from an empty cache: the same clear error, not transformers' OSError.
    with pytest.raises(DataUnavailableError, match="tiny-base"):
        load_export(folder, manifest, token=TOKEN, cache_dir=str(tmp_path / "empty"), local_files_only=True)


def test_base_model_hub_kwargs_keep_only_what_applies_to_another_repo() -> None:
    hub = {"token": "t", "cache_dir": "/c", "revision": "v1", "subfolder": "s", "force_download": True}
    assert base_model_hub_kwargs(hub) == {"token": "t", "cache_dir": "/c", "force_download": True}
    assert base_model_hub_kwargs({"local_files_only": False, "token": None}) == {"local_files_only": False}


def test_load_pruned_of_a_private_masks_repo_passes_token_and_cache_to_the_base_model(
    local_hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = private_masks_export(local_hub, tmp_path)
    manifest = read_manifest(str(folder))
    assert manifest is not None
    reference = load_export(folder, manifest, cache_dir=str(tmp_path / "reference-cache"))  # with HF_TOKEN
    monkeypatch.delenv("HF_TOKEN")
    cache = tmp_path / "other-cache"

    loaded = load_pruned(REPO, token=TOKEN, cache_dir=str(cache))

    assert all(torch.equal(value, backbone(reference)[name]) for name, value in backbone(loaded).items())
    assert {f"models--{USER}--tiny-base", f"models--{USER}--tiny-pruned"} <= cached_repos(cache)
    assert f"models--{USER}--tiny-base" not in cached_repos(constants.HF_HUB_CACHE)


# --------------------------------------------------------------------------- background pushes
def test_push_in_the_background_returns_a_future_of_the_commit(local_hub: HubServer, tmp_path: Path) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)
    local_hub.delay_next("POST", r"/commit/", 1.0)  # the commit takes a while: push_pruned must not wait

    future = push_pruned(folder, REPO, run_as_future=True)

    assert isinstance(future, Future) and not future.done()
    commit = future.result(timeout=120)
    assert commit.oid == local_hub.commits(REPO)[0].oid
    assert repo_files(REPO) == set(before) | {".gitattributes"}
    assert folder_bytes(folder) == before
    assert same_logits(load_pruned(REPO), load_pruned(folder))


def test_background_pushes_land_in_the_order_they_were_asked_for(local_hub: HubServer, tmp_path: Path) -> None:
    dense = magnitude_export(local_base(tmp_path), tmp_path / "dense", "dense")
    compact = magnitude_export(local_base(tmp_path), tmp_path / "compact", "compact")
    local_hub.delay_next("POST", r"/commit/", 0.5)

    first = push_pruned(dense, REPO, run_as_future=True)
    second = push_pruned(compact, REPO, run_as_future=True)

    commits = [first.result(timeout=120), second.result(timeout=120)]
    log = local_hub.commits(REPO)
    assert [c.oid for c in log[:2]] == [commits[1].oid, commits[0].oid]  # newest first
    # The second commit replaced the dense export: no stale model.safetensors.
    assert repo_files(REPO) == set(folder_bytes(compact)) | {".gitattributes"}


def test_a_background_push_checks_its_input_at_once_and_raises_hub_failures_from_the_future(
    local_hub: HubServer, tmp_path: Path
) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    plain = tmp_path / "plain"
    tiny_bert().save_pretrained(plain)

    with pytest.raises(InvalidConfigError, match="not a valid Hub repo id"):
        push_pruned(folder, "me/a b", run_as_future=True)
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        push_pruned(plain, REPO, run_as_future=True)
    with pytest.raises(InvalidConfigError, match="run_as_future='yes'"):
        push_pruned(folder, REPO, run_as_future="yes")  # type: ignore[arg-type]
    assert local_hub.requests == []  # nothing was sent

    bad = "hf_not_a_real_token_4f9a1c"
    failed = push_pruned(folder, REPO, token=bad, run_as_future=True)
    with pytest.raises(HubPushError, match="token is missing or invalid") as caught:
        failed.result(timeout=120)
    assert REPO in str(caught.value) and bad not in str(caught.value)


def test_a_background_push_whose_folder_went_away_says_so(local_hub: HubServer, tmp_path: Path) -> None:
    first = magnitude_export(local_base(tmp_path), tmp_path / "first")
    second = magnitude_export(local_base(tmp_path), tmp_path / "second", sparsity=0.7)
    local_hub.delay_next("POST", r"/commit/", 1.5)  # the worker is busy with the first push meanwhile

    running = push_pruned(first, REPO, run_as_future=True)
    queued = push_pruned(second, REPO, run_as_future=True)
    shutil.rmtree(second)  # before its turn: not a Hub failure

    running.result(timeout=120)
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        queued.result(timeout=120)
    assert len(local_hub.commits(REPO)) == 2  # the Hub's initial commit and the first push


def test_trainer_push_to_hub_without_blocking_returns_a_future(local_hub: HubServer, tmp_path: Path) -> None:
    trainer = PruningTrainer(
        model=local_base(tmp_path),
        args=training_args(tmp_path / "run", max_steps=2, push_to_hub=True, hub_model_id=REPO),
        train_dataset=tiny_dataset(16),
        pruning=MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1),
    )
    trainer.train()

    pushed = trainer.push_to_hub(blocking=False)

    assert isinstance(pushed, Future)
    assert pushed.result(timeout=120).oid == local_hub.commits(REPO)[0].oid
    assert same_logits(load_pruned(REPO), load_pruned(tmp_path / "run" / "pruned-export"))
