"""Publishing exports to the Hub and loading them back by repo id, against the local test Hub.

Everything goes over HTTP to ``tests/hub_server.py`` through the real ``huggingface_hub`` and
``transformers`` clients (the ``local_hub`` fixture only redirects their endpoint, token and
cache). The one thing changed in the client is its backoff *sleep* in the failure tests, so that
six retries of a failing commit take milliseconds instead of 23 s; the retries themselves (their
number, their requests) are the client's own.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import _http
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

import hf_prune
from hf_prune import MagnitudeConfig, PruningTrainer, RankConfig, create_method, load_pruned, save_pruned
from hf_prune.cards import CardInfo, TaskResult
from hf_prune.cli import main as cli_main
from hf_prune.errors import InvalidConfigError
from hf_prune.formats import MANIFEST_FILE_NAME, ExportFormatError, MissingExportFileError, read_manifest
from hf_prune.hub import HubPushError, push_pruned

from .common import logits, magnitude_pruned, tiny_bert, tiny_dataset, train_steps, training_args
from .hub_server import OTHER_TOKEN, OTHER_USER, TOKEN, USER, HubServer

REPO = f"{USER}/tiny-pruned"
BASE_REPO = f"{USER}/tiny-base"
PLOT = "sparsity_per_layer.png"
WRITES = ("POST", "PUT", "DELETE")


# --------------------------------------------------------------------------------------- helpers
def local_base(root: Path, seed: int = 0) -> BertForSequenceClassification:
    """A tiny BERT loaded from a local folder (so it records where it came from)."""
    folder = root / f"base-{seed}"
    if not folder.is_dir():
        tiny_bert(seed).save_pretrained(folder)
    return BertForSequenceClassification.from_pretrained(folder)


def hub_base(root: Path, seed: int = 0) -> BertForSequenceClassification:
    """A tiny BERT pushed to the local Hub as BASE_REPO and loaded from there by its id."""
    folder = root / f"hub-base-{seed}"
    tiny_bert(seed).save_pretrained(folder)
    api = HfApi()
    api.create_repo(BASE_REPO, exist_ok=True)
    api.upload_folder(repo_id=BASE_REPO, folder_path=folder, commit_message="tiny base")
    return BertForSequenceClassification.from_pretrained(BASE_REPO)


def magnitude_export(
    model: torch.nn.Module, folder: Path, fmt: str = "compact", sparsity: float = 0.5, **kw: Any
) -> Path:
    model, method = magnitude_pruned(model, sparsity)
    save_pruned(model, folder, method, format=fmt, **kw)
    return folder


def rank_export(model: torch.nn.Module, folder: Path, fmt: str = "factored") -> Path:
    """Rank pruning needs a few training steps to settle its gates (the rank.py docstring example)."""
    method = create_method(RankConfig(target_params_fraction=0.5, warmup_end_step=2, end_step=4))
    method.attach(model)
    train_steps(model, method, 5)
    save_pruned(model, folder, method, format=fmt)
    return folder


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> contents): a byte-for-byte fingerprint."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def repo_files(repo_id: str, revision: str | None = None) -> set[str]:
    return set(HfApi().list_repo_files(repo_id, revision=revision))


def commit_titles(hub: HubServer, repo_id: str, revision: str = "main") -> list[str]:
    return [c.title for c in hub.commits(repo_id, revision)]


def writes(hub: HubServer, since: int = 0) -> list[tuple[str, str, int]]:
    return [r for r in hub.requests[since:] if r[0] in WRITES]


def commit_requests(hub: HubServer) -> list[tuple[str, str, int]]:
    return [r for r in hub.requests if "/commit/" in r[1]]


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 5.0) -> Any:
    """``read()`` once ``done`` holds for it (or the time is up): the server logs a request just
    after answering it, so the log may lag a moment behind the client."""
    deadline = time.monotonic() + seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def same_logits(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return torch.equal(logits(a), logits(b))


def backbone(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith("bert.") and "pooler" not in k}


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's retry backoff (1, 2, 4, 8, 8 s) shortened to 10 ms; returns the sleeps asked for."""
    asked: list[float] = []
    real = time.sleep

    class Clock:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            asked.append(seconds)
            real(0.01)

    monkeypatch.setattr(_http, "time", Clock())
    return asked


@pytest.fixture
def client_timeout() -> Iterator[Callable[[float], None]]:
    """Give the client's HTTP calls a timeout (its default client has none for API calls)."""
    previous = _http._GLOBAL_CLIENT_FACTORY

    def set_timeout(seconds: float) -> None:
        _http.set_client_factory(
            lambda: httpx2.Client(event_hooks={"request": [_http.hf_request_event_hook]}, timeout=seconds)
        )

    yield set_timeout
    _http.set_client_factory(previous)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at DEBUG, from hf_prune and the clients (to check no token leaks)."""
    for name in (None, "huggingface_hub", "httpx2", "httpcore2", "hf_prune", "transformers"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (TOKEN, OTHER_TOKEN, *secrets):
        assert secret not in text


# ------------------------------------------------------------------ 1. push -> load, each format
@pytest.mark.parametrize("fmt", ["dense", "compact", "factored", "masks"])
def test_push_then_load_by_repo_id_matches_the_local_export(local_hub: HubServer, tmp_path: Path, fmt: str) -> None:
    if fmt == "masks":
        # The pattern applies to the base model, which must be loadable: it is on the Hub too.
        base = hub_base(tmp_path)
        folder = magnitude_export(base, tmp_path / "export", fmt)
        manifest = read_manifest(str(folder))
        assert manifest is not None and manifest["base_model"] == BASE_REPO
        # transformers 5 no longer records the commit a model was loaded from (config._commit_hash),
        # so the revision is pinned only where it is known.
        assert manifest["base_model_revision"] in (None, local_hub.commits(BASE_REPO)[0].oid)
    elif fmt == "factored":
        folder = rank_export(local_base(tmp_path), tmp_path / "export")
    else:
        folder = magnitude_export(local_base(tmp_path), tmp_path / "export", fmt)
    before = folder_bytes(folder)

    commit = push_pruned(folder, REPO)

    assert commit.oid == local_hub.commits(REPO)[0].oid
    method = "rank" if fmt == "factored" else "magnitude"
    assert commit_titles(local_hub, REPO)[0].startswith(f"Upload pruned model ({method}, {fmt}, sparsity ")
    assert folder_bytes(folder) == before  # pushing only reads the export
    # Every file the export wrote is in the repo, and nothing else (besides the Hub's .gitattributes).
    assert repo_files(REPO) == set(before) | {".gitattributes"}
    local = load_pruned(folder)
    remote = load_pruned(REPO)
    assert type(remote) is type(local) and not remote.training
    if fmt == "masks":
        # The base model's weights with the pattern (checked exactly below); the task head is fresh,
        # so only the backbone is compared.
        assert backbone(remote).keys() == backbone(local).keys()
        assert all(torch.equal(value, backbone(local)[name]) for name, value in backbone(remote).items())
        assert sum(int((value == 0).sum()) for value in backbone(remote).values()) > 0
        return
    assert same_logits(remote, local)
    if fmt == "dense":
        plain = AutoModelForSequenceClassification.from_pretrained(REPO)
        assert same_logits(plain, local)
    else:
        # hf_prune_loader.py travels with the export: no hf_prune needed to load it from the Hub.
        plain = AutoModelForSequenceClassification.from_pretrained(REPO, trust_remote_code=True)
        assert type(plain).__name__ == "BertForSequenceClassification"
        assert same_logits(plain, local)


def test_masks_export_applies_to_its_base_model_pattern_exactly(local_hub: HubServer, tmp_path: Path) -> None:
    base = hub_base(tmp_path)
    expected = {k: v.clone() for k, v in base.state_dict().items()}
    pruned, method = magnitude_pruned(base, 0.5)
    kept = {k: v != 0 for k, v in pruned.state_dict().items()}
    save_pruned(pruned, tmp_path / "masks", method, format="masks")
    push_pruned(tmp_path / "masks", REPO)

    loaded = load_pruned(REPO)

    targets = [k for k in kept if k.endswith(".weight") and "encoder.layer" in k and not bool(kept[k].all())]
    assert targets, "magnitude pruning zeroed nothing"
    state = loaded.state_dict()
    for key in targets:
        assert torch.equal(state[key], expected[key] * kept[key]), key  # base weights, the pattern's zeros
    assert torch.equal(
        state["bert.embeddings.word_embeddings.weight"], expected["bert.embeddings.word_embeddings.weight"]
    )


# ------------------------------------------------------------------------- 2. revisions
def test_revision_round_trip_leaves_main_unchanged(local_hub: HubServer, tmp_path: Path) -> None:
    on_main = magnitude_export(local_base(tmp_path), tmp_path / "main", sparsity=0.5)
    on_v1 = magnitude_export(local_base(tmp_path), tmp_path / "v1", sparsity=0.9)
    push_pruned(on_main, REPO)
    main_history = local_hub.commits(REPO)

    push_pruned(on_v1, REPO, revision="v1")

    assert local_hub.commits(REPO) == main_history
    assert [c.oid for c in local_hub.commits(REPO, "v1")[1:]] == [c.oid for c in main_history]
    assert same_logits(load_pruned(REPO, revision="v1"), load_pruned(on_v1))
    assert same_logits(load_pruned(REPO), load_pruned(on_main))
    assert not same_logits(load_pruned(on_v1), load_pruned(on_main))
    remote_code = AutoModelForSequenceClassification.from_pretrained(REPO, revision="v1", trust_remote_code=True)
    assert same_logits(remote_code, load_pruned(on_v1))


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_loading_a_missing_revision_is_a_clear_error(local_hub: HubServer, tmp_path: Path, fmt: str) -> None:
    push_pruned(magnitude_export(local_base(tmp_path), tmp_path / "export", fmt), REPO)

    with pytest.raises(MissingExportFileError) as missing:
        load_pruned(REPO, revision="no-such-branch")

    message = str(missing.value)
    assert REPO in message and "'no-such-branch'" in message and "main" in message  # names what exists
    with pytest.raises(MissingExportFileError, match=f"{USER}/nothing-here"):
        load_pruned(f"{USER}/nothing-here")


# --------------------------------------------------------------- 3. commits: none, or exactly one
def test_unchanged_push_makes_no_commit_and_a_changed_export_exactly_one(local_hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    magnitude_export(local_base(tmp_path), folder, sparsity=0.5)
    first = push_pruned(folder, REPO)
    history = local_hub.commits(REPO)

    again = push_pruned(folder, REPO)

    assert again.oid == first.oid and local_hub.commits(REPO) == history
    # The client sent no commit request at all (counted over the whole log: its last entry may lag).
    assert len(commit_requests(local_hub)) == 1

    # The same folder exported again with another sparsity: one commit with the files that changed.
    magnitude_export(local_base(tmp_path), folder, sparsity=0.8)
    changed = push_pruned(folder, REPO)
    assert len(local_hub.commits(REPO)) == len(history) + 1 and changed.oid == local_hub.commits(REPO)[0].oid
    assert same_logits(load_pruned(REPO), load_pruned(folder))
    assert push_pruned(folder, REPO).oid == changed.oid  # and again nothing
    assert len(commit_requests(local_hub)) == 2


def test_a_new_format_in_the_same_repo_removes_the_previous_weights(local_hub: HubServer, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    magnitude_export(local_base(tmp_path), folder, "dense")
    push_pruned(folder, REPO)
    assert "model.safetensors" in repo_files(REPO)
    commits = len(local_hub.commits(REPO))

    magnitude_export(local_base(tmp_path), folder, "compact")  # replaces the export in place
    push_pruned(folder, REPO)

    assert len(local_hub.commits(REPO)) == commits + 1
    # A stale model.safetensors would make plain from_pretrained load the old dense weights.
    assert repo_files(REPO) == set(folder_bytes(folder)) | {".gitattributes"}
    with pytest.raises(OSError):
        AutoModelForSequenceClassification.from_pretrained(REPO)
    assert same_logits(load_pruned(REPO), load_pruned(folder))


# ------------------------------------------------------------------ 4. Trainer and CLI
def test_trainer_push_to_hub_publishes_the_export_not_the_checkpoints(local_hub: HubServer, tmp_path: Path) -> None:
    model = hub_base(tmp_path)
    args = training_args(
        tmp_path / "run",
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
        push_to_hub=True,
        hub_model_id=REPO,
        hub_strategy="checkpoint",  # pushes the weights and last-checkpoint/ (with hf_prune_state) while training
    )
    trainer = PruningTrainer(
        model=model,
        args=args,
        train_dataset=tiny_dataset(32),
        pruning=MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=2),
    )
    trainer.train()
    during = repo_files(REPO)
    assert any(name.startswith("last-checkpoint/") for name in during)  # the Trainer did push checkpoints
    assert "last-checkpoint/hf_prune_state.safetensors" in during

    commit = trainer.push_to_hub()

    export = tmp_path / "run" / "pruned-export"
    files = repo_files(REPO)
    assert {MANIFEST_FILE_NAME, "README.md", PLOT, "model.safetensors", "pruning_report.json"} <= files
    assert files == set(folder_bytes(export)) | {".gitattributes"}, files - set(folder_bytes(export))
    assert not [f for f in files if "hf_prune_state" in f or f.startswith(("checkpoint-", "last-checkpoint"))]
    assert commit.oid == local_hub.commits(REPO)[0].oid and local_hub.commits(REPO)[0].title == "End of training"
    card = ModelCard.load(REPO)
    assert "hf-prune" in card.data.tags and "magnitude" in card.data.tags
    assert card.content == (export / "README.md").read_text(encoding="utf-8")
    assert same_logits(load_pruned(REPO), load_pruned(export))


def test_cli_push(local_hub: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")

    assert cli_main(["push", str(folder), REPO, "--revision", "v1"]) == 0

    out = capsys.readouterr().out
    assert f"{REPO}@v1" in out and f"load_pruned({REPO!r}, revision='v1')" in out
    assert MANIFEST_FILE_NAME in repo_files(REPO, revision="v1")
    assert cli_main(["push", str(folder), "me/a b"]) == 2
    assert "'me/a b' is not a valid Hub repo id" in capsys.readouterr().err


# ------------------------------------------------------------------------- 5. the card
def test_card_on_the_hub_parses_with_metadata_results_and_plot(local_hub: HubServer, tmp_path: Path) -> None:
    result = TaskResult(
        task="movie_sentiment", dataset_type="vader_movie_reviews", metric_type="accuracy", value=0.79, num_examples=200
    )
    info = CardInfo(base_model=BASE_REPO, repo_id=REPO, eval_results=[result])
    folder = magnitude_export(hub_base(tmp_path), tmp_path / "export", card=info)
    push_pruned(folder, REPO)

    card = ModelCard.load(REPO)  # downloaded through the server

    assert card.data.base_model == BASE_REPO
    assert "hf-prune" in card.data.tags
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("accuracy", 0.79)]
    assert PLOT in repo_files(REPO) and f"]({PLOT})" in card.text
    assert card.content == (folder / "README.md").read_text(encoding="utf-8")
    on_hub = HfApi().model_info(REPO)  # and the Hub read the same metadata
    assert on_hub.card_data is not None and on_hub.card_data.base_model == BASE_REPO


@pytest.mark.parametrize("fmt", ["dense", "compact", "masks"])
def test_card_names_the_hub_base_model_without_being_told(local_hub: HubServer, tmp_path: Path, fmt: str) -> None:
    # What PruningTrainer.push_to_hub publishes: no CardInfo, so the export must know its base.
    push_pruned(magnitude_export(hub_base(tmp_path), tmp_path / "export", fmt), REPO)

    assert ModelCard.load(REPO).data.base_model == BASE_REPO


# ------------------------------------------------------------------------- 6. failures
def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def check_failure(err: HubPushError, logs: pytest.LogCaptureFixture, *needles: str, secret: str = "") -> None:
    message = str(err)
    assert REPO in message and "local export is unchanged" in message and "pushing again" in message
    for needle in needles:
        assert needle in message, message
    assert_no_secret(message, *filter(None, [secret]))
    assert_no_secret(logs.text, *filter(None, [secret]))


def settle(hub: HubServer, delay: float) -> None:
    """Wait until every held request arrived and was carried out (a timed-out one is never logged:
    the server fails to answer the closed connection)."""
    deadline = time.monotonic() + 15
    while hub._rules and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay + 1.0)


def retry_leaves_one_commit(hub: HubServer, folder: Path, repo_id: str = REPO, **push: Any) -> None:
    """Push again after a failure: exactly one commit more (after the Hub's initial commit when the
    failed push never got to create the repo), and the repo loads as the export."""
    try:
        before = len(hub.commits(repo_id))
    except KeyError:  # no such repo yet: creating it makes the initial commit
        before = 1
    push_pruned(folder, repo_id, **push)
    assert len(hub.commits(repo_id)) == before + 1
    assert same_logits(load_pruned(repo_id, token=push.get("token")), load_pruned(folder))


def test_unreachable_hub(local_hub: HubServer, tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)

    with pytest.raises(HubPushError) as failed:
        push_pruned(folder, REPO, endpoint=closed_port_endpoint())

    check_failure(failed.value, logs, "HF_ENDPOINT", "network")
    assert folder_bytes(folder) == before
    assert local_hub.requests == []
    retry_leaves_one_commit(local_hub, folder)


def test_persistent_server_error_on_commit(
    local_hub: HubServer, tmp_path: Path, logs: pytest.LogCaptureFixture, fast_backoff: list[float]
) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)
    local_hub.fail_next("POST", r"/commit/main$", status=503, times=6)  # the client tries 1 + 5 times

    with pytest.raises(HubPushError) as failed:
        push_pruned(folder, REPO)

    check_failure(failed.value, logs, "503", "later")
    attempts = eventually(lambda: [r[2] for r in commit_requests(local_hub)], lambda got: len(got) >= 6)
    assert attempts == [503] * 6
    assert fast_backoff == [1, 2, 4, 8, 8]  # the client's own backoff, only shortened
    assert folder_bytes(folder) == before
    assert commit_titles(local_hub, REPO) == ["initial commit"]  # the repo exists, no commit landed
    retry_leaves_one_commit(local_hub, folder)


def test_timeouts_mid_upload_leave_no_duplicate_commit(
    local_hub: HubServer,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    fast_backoff: list[float],
    client_timeout: Callable[[float], None],
) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)
    HfApi().create_repo(REPO)
    # Every commit attempt outlasts the client's timeout; the server still carries each one out
    # afterwards, as the Hub does when a client gives up waiting.
    client_timeout(0.75)
    local_hub.delay_next("POST", r"/commit/main$", seconds=1.5, times=6)

    with pytest.raises(HubPushError) as failed:
        push_pruned(folder, REPO)

    check_failure(failed.value, logs, "Timeout")
    assert folder_bytes(folder) == before
    settle(local_hub, 1.5)
    # The first attempt landed after the client gave up; the five retries named the same parent
    # commit, so the server refused them (without parent_commit, each one would be a commit).
    assert len(local_hub.commits(REPO)) == 2
    seen = len(local_hub.requests)  # settled: nothing is in flight any more

    push_pruned(folder, REPO)  # the retry finds everything there: no commit at all

    assert len(local_hub.commits(REPO)) == 2
    assert not [r for r in local_hub.requests[seen:] if "/commit/" in r[1]]
    assert same_logits(load_pruned(REPO), load_pruned(folder))


def test_a_lost_commit_response_is_not_committed_twice(
    local_hub: HubServer, tmp_path: Path, fast_backoff: list[float], client_timeout: Callable[[float], None]
) -> None:
    # One timeout: the client retries the commit while the first one is still being carried out.
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    HfApi().create_repo(REPO)
    client_timeout(0.75)
    local_hub.delay_next("POST", r"/commit/main$", seconds=1.5)

    push_pruned(folder, REPO)

    settle(local_hub, 1.5)
    assert len(local_hub.commits(REPO)) == 2, commit_titles(local_hub, REPO)
    assert repo_files(REPO) == set(folder_bytes(folder)) | {".gitattributes"}


@pytest.mark.parametrize("case", ["missing", "invalid"])
def test_missing_or_invalid_token(
    local_hub: HubServer, tmp_path: Path, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)
    bad = "hf_not_a_real_token_4f9a1c"
    monkeypatch.delenv("HF_TOKEN")

    with pytest.raises(HubPushError) as failed:
        push_pruned(folder, REPO, token=bad if case == "invalid" else None)

    check_failure(failed.value, logs, "token is missing or invalid", "hf auth login", secret=bad)
    assert folder_bytes(folder) == before
    assert not writes(local_hub) or all(r[2] == 401 for r in writes(local_hub))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    retry_leaves_one_commit(local_hub, folder)


@pytest.mark.parametrize("exists", [False, True])
def test_repo_the_token_may_not_write(
    local_hub: HubServer, tmp_path: Path, logs: pytest.LogCaptureFixture, exists: bool
) -> None:
    theirs = f"{OTHER_USER}/theirs"
    if exists:
        HfApi(token=OTHER_TOKEN).create_repo(theirs)
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    before = folder_bytes(folder)

    with pytest.raises(HubPushError) as failed:
        push_pruned(folder, theirs)

    message = str(failed.value)
    assert theirs in message and "may not write" in message and "your own name" in message
    assert_no_secret(message)
    assert_no_secret(logs.text)
    assert folder_bytes(folder) == before
    if exists:
        assert len(local_hub.commits(theirs)) == 1  # nothing landed
    retry_leaves_one_commit(local_hub, folder, theirs, token=OTHER_TOKEN)  # with the owner's token
    assert local_hub.commits(theirs)[0].author == OTHER_USER
    assert_no_secret(logs.text)


def test_push_while_offline_is_a_clear_error(tmp_path: Path) -> None:
    # No local_hub here: the test session runs with HF_HUB_OFFLINE=1 (tests/conftest.py).
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")

    with pytest.raises(HubPushError, match=f"{REPO} failed: HF_HUB_OFFLINE=1 is set"):
        push_pruned(folder, REPO)


# ------------------------------------------------------------------------- 7. bad input
def test_bad_input_is_refused_before_anything_is_sent(local_hub: HubServer, tmp_path: Path) -> None:
    folder = magnitude_export(local_base(tmp_path), tmp_path / "export")
    plain = tmp_path / "plain"
    tiny_bert().save_pretrained(plain)
    corrupted = magnitude_export(local_base(tmp_path), tmp_path / "corrupted")
    weights = corrupted / "model.compact.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    weights.write_bytes(bytes(data))

    with pytest.raises(InvalidConfigError, match="not a valid Hub repo id"):
        push_pruned(folder, "me/a b")
    with pytest.raises(InvalidConfigError, match="not a valid Hub repo id"):
        push_pruned(folder, "a/b/c")
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        push_pruned(plain, REPO)
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        push_pruned(tmp_path / "does-not-exist", REPO)
    with pytest.raises(ExportFormatError, match="model.compact.safetensors"):
        push_pruned(corrupted, REPO)
    (folder / "pruning_report.json").unlink()
    with pytest.raises(MissingExportFileError):
        push_pruned(folder, REPO)

    assert local_hub.requests == []  # nothing at all reached the Hub


def test_push_pruned_is_exported_from_the_package() -> None:
    assert hf_prune.push_pruned is push_pruned
    assert issubclass(HubPushError, hf_prune.errors.HfPruneError)
