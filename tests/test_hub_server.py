"""The test Hub (tests/hub_server.py) driven by the real huggingface_hub and transformers clients.

Every call below goes over HTTP to the local server through the unchanged client code; only the
endpoint, token, cache and offline flag are redirected, by the `local_hub` fixture.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
import torch
import transformers
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import _http
from huggingface_hub.utils.sha import git_hash

from .hub_server import (
    ORG,
    OTHER_TOKEN,
    OTHER_USER,
    USER,
    HubServer,
)

REPO = f"{USER}/tiny-bert"


def tiny_model(num_labels: int = 2, seed: int = 0) -> transformers.BertForSequenceClassification:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        num_labels=num_labels,
    )
    return transformers.BertForSequenceClassification(config).eval()


def save(model: transformers.PreTrainedModel, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def git(hub: HubServer, repo_id: str, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={hub.repo_path(repo_id)}", *args], capture_output=True, check=True
    ).stdout.decode()


def test_upload_folder_is_one_commit_stored_in_git(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    url = api.create_repo(REPO)
    assert url == f"{local_hub.endpoint}/{REPO}"
    folder = save(tiny_model(), tmp_path / "model")

    info = api.upload_folder(repo_id=REPO, folder_path=folder, commit_message="Add tiny BERT")

    commits = local_hub.commits(REPO)
    assert [c.title for c in commits] == ["Add tiny BERT", "initial commit"]  # the Hub's initial commit
    assert commits[0].oid == info.oid and commits[0].author == USER
    assert [c.commit_id for c in api.list_repo_commits(REPO)] == [c.oid for c in commits]
    repo = api.repo_info(REPO)
    assert repo.sha == info.oid and repo.private is False
    assert {s.rfilename for s in repo.siblings} == {".gitattributes", "config.json", "model.safetensors"}

    # The storage is a real git repository holding exactly the uploaded bytes.
    assert git(local_hub, REPO, "log", "--format=%an|%s", "main").splitlines() == [
        f"{USER}|Add tiny BERT",
        f"{USER}|initial commit",
    ]
    for name in ("config.json", "model.safetensors"):
        shown = subprocess.run(
            ["git", f"--git-dir={local_hub.repo_path(REPO)}", "show", f"main:{name}"], capture_output=True, check=True
        ).stdout
        assert shown == (folder / name).read_bytes()
    git(local_hub, REPO, "fsck", "--strict")


def test_reupload_of_unchanged_files_makes_no_commit(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO)
    folder = save(tiny_model(), tmp_path / "model")
    first = api.upload_folder(repo_id=REPO, folder_path=folder)
    seen = len(local_hub.requests)

    again = api.upload_folder(repo_id=REPO, folder_path=folder)

    assert again.oid == first.oid
    assert len(local_hub.commits(REPO)) == 2
    # The client compared preupload's `oid` with its local git hashes and never sent a commit.
    assert not [r for r in local_hub.requests[seen:] if "/commit/" in r[1]]

    # A changed config alone: only that file goes into the new commit.
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"hidden_act": "gelu"', '"hidden_act": "gelu_new"'))
    changed = api.upload_folder(repo_id=REPO, folder_path=folder)
    assert len(local_hub.commits(REPO)) == 3
    assert git(local_hub, REPO, "diff-tree", "--no-commit-id", "--name-only", "-r", changed.oid).split() == [
        "config.json"
    ]


def test_branch_upload_download_and_refs(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO)
    base, pruned = tiny_model(seed=0), tiny_model(num_labels=3, seed=1)
    on_main = api.upload_folder(repo_id=REPO, folder_path=save(base, tmp_path / "base"))

    api.create_branch(REPO, branch="pruned")
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_branch(REPO, branch="pruned")
    assert exists.value.response.status_code == 409
    api.create_branch(REPO, branch="pruned", exist_ok=True)
    initial = local_hub.commits(REPO)[-1].oid
    api.create_branch(REPO, branch="from-initial", revision=initial)
    on_branch = api.upload_folder(repo_id=REPO, folder_path=save(pruned, tmp_path / "pruned"), revision="pruned")

    refs = {ref.name: ref.target_commit for ref in api.list_repo_refs(REPO).branches}
    assert refs == {"main": on_main.oid, "pruned": on_branch.oid, "from-initial": initial}
    assert [c.commit_id for c in api.list_repo_commits(REPO, revision="pruned")][:2] == [on_branch.oid, on_main.oid]
    main_config = Path(hf_hub_download(REPO, "config.json"))
    branch_config = Path(hf_hub_download(REPO, "config.json", revision="pruned"))
    assert main_config.read_bytes() == (tmp_path / "base" / "config.json").read_bytes()
    assert branch_config.read_bytes() == (tmp_path / "pruned" / "config.json").read_bytes()

    loaded = transformers.BertForSequenceClassification.from_pretrained(REPO, revision="pruned")
    assert loaded.config.num_labels == 3 and same_weights(loaded, pruned)
    loaded_main = transformers.BertForSequenceClassification.from_pretrained(REPO)
    assert loaded_main.config.num_labels == 2 and same_weights(loaded_main, base)
    by_sha = transformers.BertForSequenceClassification.from_pretrained(REPO, revision=on_main.oid)
    assert same_weights(by_sha, base)


def test_push_to_hub_and_module_level_functions(local_hub: HubServer) -> None:
    # transformers' own HfApi and huggingface_hub's module-level one both reach the local server.
    model = tiny_model()
    model.push_to_hub(f"{USER}/pushed")
    assert local_hub.commits(f"{USER}/pushed")[0].author == USER
    assert same_weights(transformers.BertForSequenceClassification.from_pretrained(f"{USER}/pushed"), model)
    card = b"---\nlicense: apache-2.0\ntags: [pruning]\n---\n# A pruned tiny BERT\n"
    huggingface_hub.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=f"{USER}/pushed")
    assert "README.md" in huggingface_hub.list_repo_files(f"{USER}/pushed")
    info = huggingface_hub.model_info(f"{USER}/pushed")
    assert info.card_data.license == "apache-2.0" and info.tags == ["pruning"]
    assert ("POST", "/api/validate-yaml", 200) in local_hub.requests  # the client checked the card first


def test_downloads_tree_and_paths_info(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO)
    folder = save(tiny_model(), tmp_path / "model")
    (folder / "notes").mkdir()
    (folder / "notes" / "pruning.txt").write_text("heads: 1 of 2\n")
    api.upload_folder(repo_id=REPO, folder_path=folder)

    snapshot = Path(snapshot_download(REPO))
    assert snapshot.is_relative_to(constants.HF_HUB_CACHE)  # the per-test cache, not ~/.cache
    assert constants.HF_HUB_CACHE.startswith(str(tmp_path))
    for name in ("config.json", "model.safetensors", "notes/pruning.txt"):
        assert (snapshot / name).read_bytes() == (folder / name).read_bytes()

    tree = {entry.path: entry for entry in api.list_repo_tree(REPO, recursive=True)}
    assert set(tree) == {".gitattributes", "config.json", "model.safetensors", "notes", "notes/pruning.txt"}
    assert {e.path for e in api.list_repo_tree(REPO, path_in_repo="notes")} == {"notes/pruning.txt"}
    [info] = api.get_paths_info(REPO, ["config.json", "not-there.json"])
    content = (folder / "config.json").read_bytes()
    assert info.blob_id == git_hash(content) and info.size == len(content)
    # What a resumed download asks for.
    url = huggingface_hub.hf_hub_url(REPO, "config.json")
    partial = httpx2.get(url, headers={"Range": "bytes=10-"})
    assert partial.status_code == 206 and partial.content == content[10:]
    assert partial.headers["ETag"] == f'"{info.blob_id}"'

    # deletedFile: a real commit, and a missing file is the client's EntryNotFoundError.
    api.delete_file("notes/pruning.txt", repo_id=REPO)
    assert "notes/pruning.txt" not in {s.rfilename for s in api.repo_info(REPO).siblings}
    with pytest.raises(EntryNotFoundError):
        api.delete_file("notes/pruning.txt", repo_id=REPO)


def test_commit_header_description_and_parent(local_hub: HubServer) -> None:
    api = HfApi()
    api.create_repo(REPO)
    head = local_hub.commits(REPO)[0].oid
    add = [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a")]
    info = api.create_commit(REPO, add, commit_message="Add a", commit_description="Why: a test.", parent_commit=head)
    assert local_hub.commits(REPO)[0].message == "Add a\n\nWhy: a test."
    stale = [CommitOperationAdd(path_in_repo="b.txt", path_or_fileobj=b"b")]
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_commit(REPO, stale, commit_message="Add b", parent_commit=head)
    assert conflict.value.response.status_code == 412
    assert local_hub.commits(REPO)[0].oid == info.oid


def test_private_repos_are_hidden_from_other_tokens(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    repo_id = f"{ORG}/private-bert"
    api.create_repo(repo_id, private=True)
    api.upload_folder(repo_id=repo_id, folder_path=save(tiny_model(), tmp_path / "model"))
    assert api.repo_info(repo_id).private is True

    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=OTHER_TOKEN).repo_info(repo_id)
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        HfApi(token=False).repo_info(repo_id)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "config.json", token=False)
    assert Path(hf_hub_download(repo_id, "config.json")).exists()


def test_missing_repo_revision_and_file(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO)
    api.upload_folder(repo_id=REPO, folder_path=save(tiny_model(), tmp_path / "model"))

    with pytest.raises(RepositoryNotFoundError):
        api.repo_info(f"{USER}/nothing-here")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{USER}/nothing-here", "config.json")
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(REPO, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "tokenizer.json")
    with pytest.raises(OSError, match="not a valid model identifier"):
        transformers.BertForSequenceClassification.from_pretrained(f"{USER}/nothing-here")
    with pytest.raises(OSError, match="not a valid git identifier"):
        transformers.BertForSequenceClassification.from_pretrained(REPO, revision="no-such-branch")


def test_tokens_conflicts_and_namespaces(local_hub: HubServer) -> None:
    api = HfApi()
    me = api.whoami()
    assert me["name"] == USER and [org["name"] for org in me["orgs"]] == [ORG]

    bad = HfApi(token="hf_not_a_real_token")
    with pytest.raises(HfHubHTTPError, match="Invalid user token") as whoami:
        bad.whoami()
    assert whoami.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as create:
        bad.create_repo(f"{USER}/x")
    assert create.value.response.status_code == 401 and not isinstance(create.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as anonymous:
        HfApi(token=False).create_repo(f"{USER}/x")
    assert anonymous.value.response.status_code == 401

    api.create_repo(REPO)
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(REPO)
    assert conflict.value.response.status_code == 409
    api.create_repo(REPO, exist_ok=True)

    with pytest.raises(HfHubHTTPError) as forbidden:
        api.create_repo(f"{OTHER_USER}/theirs")
    assert forbidden.value.response.status_code == 403
    HfApi(token=OTHER_TOKEN).create_repo(f"{OTHER_USER}/theirs")
    with pytest.raises(HfHubHTTPError) as no_write:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{OTHER_USER}/theirs")
    assert no_write.value.response.status_code == 403


def test_injected_5xx_on_commit(local_hub: HubServer, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO)
    add = [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a")]

    local_hub.fail_next("POST", r"/commit/main$", status=500)
    with pytest.raises(HfHubHTTPError) as failed:
        api.create_commit(REPO, add, commit_message="Add a")  # create_commit does not retry a commit
    assert failed.value.response.status_code == 500
    assert len(local_hub.commits(REPO)) == 1

    # upload_folder's pipeline retries its commit with backoff (1 s here), so one 5xx is survived.
    local_hub.fail_next("POST", r"/commit/main$", status=503)
    api.upload_folder(repo_id=REPO, folder_path=save(tiny_model(), tmp_path / "model"))
    assert [r[2] for r in local_hub.requests if r[1].endswith("/commit/main")] == [500, 503, 200]
    assert len(local_hub.commits(REPO)) == 2


def test_delay_provokes_a_client_timeout(local_hub: HubServer) -> None:
    api = HfApi()
    api.create_repo(REPO)
    previous = _http._GLOBAL_CLIENT_FACTORY
    # The client's default httpx2 client has no timeout for API calls: give it one (with room for
    # the preupload call on a busy machine).
    _http.set_client_factory(lambda: httpx2.Client(event_hooks={"request": [_http.hf_request_event_hook]}, timeout=0.5))
    try:
        local_hub.delay_next("POST", r"/commit/main$", seconds=1.5)
        add = [CommitOperationAdd(path_in_repo="a.txt", path_or_fileobj=b"a")]
        with pytest.raises(httpx2.TimeoutException):
            api.create_commit(REPO, add, commit_message="Add a")
    finally:
        _http.set_client_factory(previous)
    # The delayed commit is still carried out, as when a real client gives up too early.
    deadline = time.monotonic() + 5
    while len(local_hub.commits(REPO)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_hub.commits(REPO)[0].title == "Add a"


def test_server_stops_cleanly_even_with_a_request_in_flight() -> None:
    before = set(threading.enumerate())
    with HubServer() as hub:
        root = hub.root
        hub.delay_next("GET", r"/api/whoami-v2$", seconds=30)
        answers: list[int] = []

        def call() -> None:
            try:
                urllib.request.urlopen(f"{hub.endpoint}/api/whoami-v2", timeout=10)
            except urllib.error.HTTPError as e:
                answers.append(e.code)

        caller = threading.Thread(target=call)
        caller.start()
        while hub._rules:  # wait until the server holds the request (the rule is consumed)
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 5  # stop() cut the 30 s delay short
    caller.join(timeout=5)
    assert answers == [401]  # then answered normally: no token
    assert set(threading.enumerate()) <= before
    assert not root.exists()
