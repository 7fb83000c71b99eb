"""A small Hugging Face Hub for tests: real HTTP on 127.0.0.1, real git storage.

``huggingface_hub`` (and ``transformers``, which downloads through it) run unchanged against this
server: nothing in the client is mocked, only its endpoint, cache and offline flag are redirected
(see the ``local_hub`` fixture at the bottom).

Routes (``{type}`` is ``models``, ``datasets`` or ``spaces``; ``{repo}`` is ``namespace/name``;
``{rev}`` is a branch, ``refs/heads/...``, ``refs/tags/...`` or a commit sha, URL-quoted by the
client)::

    POST   /api/repos/create                      create_repo (409 if it exists; `private` stored)
    DELETE /api/repos/delete                      delete_repo
    POST   /api/validate-yaml                     model card metadata check (README.md uploads)
    GET    /api/whoami-v2                         whoami
    GET    /api/{type}/{repo}[/revision/{rev}]    repo_info / model_info: sha, siblings, cardData
    POST   /api/{type}/{repo}/preupload/{rev}     every file is "regular"; `oid` of the file already there
    POST   /api/{type}/{repo}/commit/{rev}        NDJSON: header, file (base64), deletedFile, deletedFolder
    POST   /api/{type}/{repo}/paths-info/{rev}    get_paths_info (form-encoded `paths`)
    GET    /api/{type}/{repo}/tree/{rev}[/{path}] list_repo_tree (`recursive`)
    GET    /api/{type}/{repo}/refs                list_repo_refs
    GET    /api/{type}/{repo}/commits/{rev}       list_repo_commits (newest first)
    POST   /api/{type}/{repo}/branch/{name}       create_branch (`startingPoint`, default main)
    DELETE /api/{type}/{repo}/branch/{name}       delete_branch
    GET|HEAD /[datasets/|spaces/]{repo}/resolve/{rev}/{path}
                                                  file download: X-Repo-Commit, ETag, Content-Length, Range

Errors carry the headers ``huggingface_hub.utils.hf_raise_for_status`` reads: ``X-Error-Code``
(RepoNotFound / RevisionNotFound / EntryNotFound) and ``X-Error-Message``, plus a JSON body
``{"error": ...}``.

Storage: one bare git repository per Hub repo under ``root/{type}/{namespace}/{name}.git``. A
commit is built with git plumbing only (``hash-object``, ``update-index`` on a temporary index,
``write-tree``, ``commit-tree``, ``update-ref`` with the old value as a compare-and-swap), authored
as the account that owns the token. Like the real Hub, ``create_repo`` makes an "initial commit"
holding ``.gitattributes``, so ``main`` always exists. Only the private flag and creation time live
in memory. There is no LFS or Xet: preupload answers ``uploadMode: "regular"`` for every file, so
contents arrive base64-encoded inside the commit NDJSON, and downloads are plain git blobs whose
ETag is the git blob sha (what the real Hub sends for non-LFS files).

Auth: a token -> account table (``tokens=``). An account writes to its own name and its orgs. An
unknown token gets 401 "Invalid credentials in Authorization header" on every route (as the Hub
does); a write without a token gets 401; a write to another namespace gets 403; a private repo is
only visible to accounts of its namespace (others get RepoNotFound, 401 when anonymous, 404 when
authenticated, as the Hub does to hide private repos).

Test hooks: ``fail_next(method, path_regex, status, times)``, ``delay_next(method, path_regex,
seconds, times)``, ``requests`` (log of ``(method, path, status)``), ``commits(repo_id, revision)``,
``repo_path(repo_id)`` (the bare git directory) and ``endpoint``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

# The default accounts. `local_hub` puts TOKEN into HF_TOKEN, so the client writes as USER.
USER = "test-user"
ORG = "test-org"
TOKEN = "hf_local_test_user_token"
OTHER_USER = "other-user"
OTHER_TOKEN = "hf_local_other_user_token"

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
# The URL prefix of a repo page / resolve URL, per repo type (models have none).
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# A short version of the .gitattributes the Hub puts in the initial commit of every repo.
INITIAL_GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""
NULL_SHA = "0" * 40
COMMIT_SHA = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class Account:
    name: str
    orgs: tuple[str, ...] = ()

    def can_write(self, namespace: str) -> bool:
        return namespace == self.name or namespace in self.orgs


DEFAULT_TOKENS = {TOKEN: Account(USER, (ORG,)), OTHER_TOKEN: Account(OTHER_USER)}


@dataclass(frozen=True)
class CommitRecord:
    """One commit of a branch, as `HubServer.commits` returns it (newest first)."""

    oid: str
    title: str
    message: str
    author: str
    date: datetime


class HubError(Exception):
    """An HTTP error answer; `code` goes into X-Error-Code, which the client maps to its exceptions."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.extra = extra or {}  # more fields for the JSON body


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    path: Path
    private: bool
    created_at: float

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]


@dataclass
class _Rule:
    """An injected failure or delay, consumed by the next `times` matching requests."""

    method: str
    pattern: re.Pattern[str]
    times: int
    status: int | None = None
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in ("*", method) and self.pattern.search(path) is not None


@dataclass
class Request:
    method: str
    path: str  # unquoted, no query string
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    account: Account | None  # None: no token sent

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def flag(self, name: str) -> bool:
        return self.query.get(name, [""])[0].lower() in ("1", "true")


@dataclass
class Response:
    status: int = 200
    body: bytes | Any = b""  # bytes are sent as is, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)


def _iso(timestamp: float) -> str:
    # The client's parse_datetime wants exactly '%Y-%m-%dT%H:%M:%S.%fZ'.
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _check_path(path: Any) -> str:
    if (
        not isinstance(path, str)
        or not path
        or path.startswith("/")
        or any(p in ("", ".", "..") for p in path.split("/"))
    ):
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


# --------------------------------------------------------------------------------------- git storage


class GitStore:
    """Bare git repositories, written with plumbing commands only (no work tree, no user config)."""

    def __init__(self, root: Path):
        self.root = root
        # Never read the developer's git config (signing, hooks, default branch...), and take paths
        # literally (a file named "*.json" is not a glob).
        self.env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_LITERAL_PATHSPECS": "1",
            "LC_ALL": "C",
        }
        self.write_lock = threading.Lock()  # one commit at a time; update-ref also checks the old head

    def git(self, repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        result = subprocess.run(
            # quotePath off: non-ASCII paths come out as they are, not as "caf\303\251.txt".
            ["git", "-c", "core.quotePath=false", f"--git-dir={repo}", *args],
            input=input,
            capture_output=True,
            env={**self.env, **(env or {})},
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def init(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(path)], check=True, env=self.env)

    def refs(self, repo: Path) -> dict[str, str]:
        out = self.git(repo, "for-each-ref", "--format=%(refname) %(objectname)").decode()
        return dict(line.split(" ", 1) for line in out.splitlines())

    def resolve(self, repo: Path, revision: str) -> str | None:
        """The commit sha a revision names, or None: branch, tag, full ref name, or (short) commit sha."""
        refs = self.refs(repo)
        for name in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
            if name.startswith("refs/") and name in refs:
                return refs[name]
        if COMMIT_SHA.fullmatch(revision):  # hex only, so safe to hand to rev-parse
            result = subprocess.run(
                ["git", f"--git-dir={repo}", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                capture_output=True,
                env=self.env,
                check=False,
            )
            if result.returncode == 0:
                return result.stdout.decode().strip()
        return None

    def entries(self, repo: Path, commit: str, path: str = "", recursive: bool = True) -> list[dict[str, Any]]:
        """Tree entries under `path` (files and, when listing, directories): type, oid, size, path."""
        args = ["ls-tree", "-z", "--format=%(objecttype) %(objectname) %(objectsize)%x09%(path)"]
        if recursive:
            args += ["-r", "-t"]
        args.append(commit)
        if path:
            args += ["--", path.rstrip("/") + "/"]
        out = self.git(repo, *args).decode()
        entries = []
        for record in filter(None, out.split("\0")):
            meta, name = record.split("\t", 1)
            kind, oid, size = meta.split(" ")
            if name == path.rstrip("/"):
                continue  # `-t` shows the listed folder itself
            if kind == "blob":
                entries.append({"type": "file", "oid": oid, "size": int(size), "path": name})
            elif kind == "tree":
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": name})
        return entries

    def entry(self, repo: Path, commit: str, path: str) -> dict[str, Any] | None:
        """The file or directory at exactly `path`, or None."""
        out = self.git(
            repo, "ls-tree", "-z", "--format=%(objecttype) %(objectname) %(objectsize)%x09%(path)", commit, "--", path
        )
        for record in filter(None, out.decode().split("\0")):
            meta, name = record.split("\t", 1)
            kind, oid, size = meta.split(" ")
            if name == path:
                return {
                    "type": "file" if kind == "blob" else "directory",
                    "oid": oid,
                    "size": 0 if kind == "tree" else int(size),
                    "path": name,
                }
        return None

    def files(self, repo: Path, commit: str) -> dict[str, dict[str, Any]]:
        return {e["path"]: e for e in self.entries(repo, commit) if e["type"] == "file"}

    def blob(self, repo: Path, oid: str) -> bytes:
        return self.git(repo, "cat-file", "blob", oid)

    def log(self, repo: Path, commit: str) -> list[CommitRecord]:
        out = self.git(repo, "log", "-z", "--format=%H%x1f%an%x1f%at%x1f%s%x1f%B", commit).decode()
        records = []
        for record in filter(None, out.split("\0")):
            oid, author, timestamp, title, message = record.split("\x1f", 4)
            records.append(
                CommitRecord(oid, title, message.strip(), author, datetime.fromtimestamp(int(timestamp), UTC))
            )
        return records

    def commit(
        self,
        repo: Path,
        branch: str,
        *,
        additions: dict[str, bytes],
        deleted_files: list[str],
        deleted_folders: list[str],
        message: str,
        author: str,
        expected_parent: str | None = None,
    ) -> str:
        """Write one commit on `branch` (created if absent) and move the branch to it; returns its sha."""
        with self.write_lock:
            ref = f"refs/heads/{branch}"
            parent = self.refs(repo).get(ref)
            if expected_parent is not None and (parent is None or not parent.startswith(expected_parent)):
                # What the Hub answers when `parent_commit` is no longer the head of the branch.
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = {path: ("100644", e["oid"]) for path, e in (self.files(repo, parent).items() if parent else [])}
            for path in deleted_files:
                if tree.pop(path, None) is None:
                    # The client looks for this sentence to explain file vs folder deletions.
                    raise HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
            for folder in deleted_folders:
                prefix = folder.rstrip("/") + "/"
                doomed = [path for path in tree if path.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {folder}", code="EntryNotFound")
                for path in doomed:
                    del tree[path]
            for path, oid in zip(additions, self._hash_blobs(repo, list(additions.values())), strict=True):
                tree[path] = ("100644", oid)
            with tempfile.TemporaryDirectory() as scratch:
                # A throwaway index: the bare repo has none, and concurrent readers never see this one.
                index_env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
                records = b"".join(
                    f"{mode} {oid}\t{path}".encode() + b"\0" for path, (mode, oid) in sorted(tree.items())
                )
                self.git(repo, "update-index", "-z", "--index-info", input=records, env=index_env)
                tree_oid = self.git(repo, "write-tree", env=index_env).decode().strip()
            identity = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@users.noreply.localhost"}
            identity |= {"GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": identity["GIT_AUTHOR_EMAIL"]}
            parents = ["-p", parent] if parent else []
            oid = (
                self.git(repo, "commit-tree", tree_oid, *parents, "-F", "-", input=message.encode(), env=identity)
                .decode()
                .strip()
            )
            # Compare-and-swap on the old head: never lose a commit made behind our back.
            self.git(repo, "update-ref", ref, oid, parent or NULL_SHA)
            return oid

    def _hash_blobs(self, repo: Path, contents: list[bytes]) -> list[str]:
        """Write the blobs with a single `git hash-object` (one process for the whole commit)."""
        if not contents:
            return []
        with tempfile.TemporaryDirectory() as scratch:
            paths = []
            for i, content in enumerate(contents):
                paths.append(os.path.join(scratch, str(i)))
                Path(paths[-1]).write_bytes(content)
            out = self.git(repo, "hash-object", "-w", "--no-filters", "--stdin-paths", input="\n".join(paths).encode())
        return out.decode().split()


# ------------------------------------------------------------------------------------------- server


class HubServer:
    """The test Hub. Use as a context manager, or call `start()` / `stop()`."""

    def __init__(self, root: str | Path | None = None, tokens: dict[str, Account] | None = None):
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hub-server-"))
        self.store = GitStore(self.root)
        self.tokens = dict(DEFAULT_TOKENS if tokens is None else tokens)
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._rules: list[_Rule] = []
        self._log: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()  # guards _repos, _rules and _log
        self._stopping = threading.Event()  # cuts injected delays short on stop()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Handler threads are joined by server_close() (block_on_close), so none outlives stop().
        self._httpd.daemon_threads = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- test hooks

    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` requests whose method (or "*") and unquoted path match with `status`."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), re.compile(path_regex), times, status=status))

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Hold the next `times` matching requests for `seconds` before handling them normally.

        The request is still carried out after the delay, as on the real Hub when the client has
        given up waiting (a commit lands although the client saw a timeout)."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), re.compile(path_regex), times, delay=seconds))

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Every request handled so far: (method, unquoted path without query, status)."""
        with self._lock:
            return list(self._log)

    def repo_path(self, repo_id: str, repo_type: str = "model") -> Path:
        """The bare git repository that stores `repo_id`."""
        return self._get_repo(repo_type, repo_id).path

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[CommitRecord]:
        repo = self._get_repo(repo_type, repo_id)
        head = self.store.resolve(repo.path, revision)
        if head is None:
            raise KeyError(f"{repo_id} has no revision {revision!r}")
        return self.store.log(repo.path, head)

    # -- used by the route handlers

    def _take_rules(self, method: str, path: str) -> tuple[float, int | None]:
        """Consume the delay and failure rules matching a request: (seconds to wait, status to fail with)."""
        delay, status = 0.0, None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.status is None and delay == 0.0:
                    delay, rule.times = rule.delay, rule.times - 1
                elif rule.status is not None and status is None:
                    status, rule.times = rule.status, rule.times - 1
            self._rules = [rule for rule in self._rules if rule.times > 0]
        return delay, status

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._log.append((method, path, status))

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id}")
        return repo


class _Handler(BaseHTTPRequestHandler):
    server_hub: HubServer
    # HTTP/1.0: one request per connection, so no keep-alive connection holds a handler thread
    # when the server stops.
    protocol_version = "HTTP/1.0"
    timeout = 30  # a stalled client cannot keep a handler thread (and stop()) waiting forever

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is `HubServer.requests`

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        hub = self.server_hub
        # Read the whole body first, even for an error answer: closing with unread bytes would make
        # the client see a connection reset instead of the status.
        body = self._read_body()
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            delay, fail_status = hub._take_rules(self.command, path)
            if delay:
                hub._stopping.wait(delay)
            if fail_status is not None:
                raise HubError(fail_status, f"Injected failure ({fail_status}) for {self.command} {path}")
            request = Request(self.command, path, parse_qs(split.query), self.headers, body, self._account())
            response = _route(hub, request, split.path)
        except HubError as e:
            payload: dict[str, Any] = {"error": e.message, **e.extra}
            # Header values must be latin-1; a path in the message may not be.
            headers = {"X-Error-Message": e.message.encode("ascii", "replace").decode(), **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
            response = Response(e.status, payload, headers)
        except Exception as e:  # a bug in this server: answer 500 rather than drop the connection
            response = Response(500, {"error": f"test hub error: {type(e).__name__}: {e}"})
        # Logged before answering: a test reading the log right after the client returns sees the
        # request, and a request whose answer is lost (a client timeout) is still logged.
        hub._record(self.command, path, response.status)
        self._send(response)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline().strip():  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def _account(self) -> Account | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        account = self.server_hub.tokens.get(header.removeprefix("Bearer ").strip())
        if account is None:
            # The Hub's answer to an unknown token, on every route; the client then raises a plain
            # HfHubHTTPError (401) rather than RepositoryNotFoundError.
            raise HubError(401, "Invalid credentials in Authorization header")
        return account

    def _send(self, response: Response) -> None:
        body = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
        headers = dict(response.headers)
        headers.setdefault(
            "Content-Type", "application/octet-stream" if isinstance(response.body, bytes) else "application/json"
        )
        headers.setdefault("Content-Length", str(len(body)))
        headers["X-Request-Id"] = secrets.token_hex(8)
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# ------------------------------------------------------------------------------------------- routes

RouteHandler = Callable[..., Response]
_ROUTES: list[tuple[str, re.Pattern[str], RouteHandler]] = []
_TYPE = r"(?P<type>models|datasets|spaces)"
_REPO = r"(?P<repo>[^/]+/[^/]+)"


def route(methods: str, pattern: str) -> Callable[[RouteHandler], RouteHandler]:
    """Register a handler for a regex on the raw (still quoted) URL path; groups are unquoted."""

    def register(handler: RouteHandler) -> RouteHandler:
        _ROUTES.append((methods, re.compile(pattern), handler))
        return handler

    return register


def _route(hub: HubServer, request: Request, raw_path: str) -> Response:
    for methods, pattern, handler in _ROUTES:
        match = pattern.fullmatch(raw_path)
        if match and request.method in methods.split("|"):
            groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            if "type" in groups:
                groups["type"] = REPO_TYPES[groups["type"]]
            return handler(hub, request, **groups)
    raise HubError(404, f"The test hub has no route for {request.method} {request.path}")


def _not_found(request: Request, what: str) -> HubError:
    # The Hub hides private and missing repos alike: 401 to an anonymous caller, 404 otherwise;
    # the client turns both into RepositoryNotFoundError through X-Error-Code.
    return HubError(401 if request.account is None else 404, f"Repository not found: {what}", code="RepoNotFound")


def _readable(hub: HubServer, request: Request, repo_type: str, repo_id: str) -> _Repo:
    with hub._lock:
        repo = hub._repos.get((repo_type, repo_id))
    if repo is None or (repo.private and not (request.account and request.account.can_write(repo.namespace))):
        raise _not_found(request, repo_id)
    return repo


def _writable(hub: HubServer, request: Request, repo_type: str, repo_id: str) -> _Repo:
    if request.account is None:
        raise HubError(401, "You must be authenticated to write to a repository (no token sent)")
    repo = _readable(hub, request, repo_type, repo_id)
    if not request.account.can_write(repo.namespace):
        raise HubError(403, f"You don't have the rights to write to {repo_id} as {request.account.name}")
    return repo


def _commit_of(hub: HubServer, repo: _Repo, revision: str) -> str:
    commit = hub.store.resolve(repo.path, revision)
    if commit is None:
        raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
    return commit


def _branch_of(hub: HubServer, repo: _Repo, revision: str) -> str:
    """Commits go to branches only; a tag or a commit sha is not a place to commit to."""
    branch = revision.removeprefix("refs/heads/")
    if f"refs/heads/{branch}" not in hub.store.refs(repo.path):
        raise HubError(404, f"Invalid rev id: {revision} is not a branch", code="RevisionNotFound")
    return branch


@route("POST", r"/api/repos/create")
def create_repo(hub: HubServer, request: Request) -> Response:
    payload = request.json()
    if request.account is None:
        raise HubError(401, "You must be authenticated to create a repository (no token sent)")
    namespace = payload.get("organization") or request.account.name
    repo_type = payload.get("type") or "model"
    repo_id = f"{namespace}/{payload.get('name')}"
    if repo_type not in URL_PREFIX or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise HubError(400, f"Invalid repo type or name: {repo_type} {repo_id}")
    if not request.account.can_write(namespace):
        raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace}")
    private = payload.get("visibility", "public") != "public" or bool(payload.get("private"))
    path = hub.root / f"{repo_type}s" / f"{repo_id}.git"
    url = f"{hub.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
    # Under the lock from check to registration: no one sees a half-created repo.
    with hub._lock:
        if (repo_type, repo_id) in hub._repos:
            # The 409 body carries the url too: create_repo(exist_ok=True) returns it from there.
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
        hub.store.init(path)
        # Like the Hub: a new repo already has a commit, holding .gitattributes, so `main` exists.
        hub.store.commit(
            path,
            "main",
            additions={".gitattributes": INITIAL_GITATTRIBUTES},
            deleted_files=[],
            deleted_folders=[],
            message="initial commit",
            author=request.account.name,
        )
        repo = hub._repos[(repo_type, repo_id)] = _Repo(repo_type, repo_id, path, private, time.time())
    return Response(200, {"url": url, "name": repo_id, "id": repo.repo_id})


@route("DELETE", r"/api/repos/delete")
def delete_repo(hub: HubServer, request: Request) -> Response:
    payload = request.json()
    repo_type = payload.get("type") or "model"
    namespace = payload.get("organization") or (request.account.name if request.account else "")
    repo = _writable(hub, request, repo_type, f"{namespace}/{payload.get('name')}")
    with hub._lock:
        del hub._repos[(repo.repo_type, repo.repo_id)]
    shutil.rmtree(repo.path, ignore_errors=True)
    return Response(200, {})


@route("POST", r"/api/validate-yaml")
def validate_yaml(hub: HubServer, request: Request) -> Response:
    # The client reads the JSON before checking the status, so even errors answer JSON.
    try:
        _front_matter(request.json().get("content", ""))
    except yaml.YAMLError as e:
        return Response(400, {"errors": [{"message": f"Invalid YAML metadata: {e}"}], "warnings": []})
    return Response(200, {"errors": [], "warnings": []})


@route("GET", r"/api/whoami-v2")
def whoami(hub: HubServer, request: Request) -> Response:
    if request.account is None:
        raise HubError(401, "Invalid credentials in Authorization header")
    account = request.account
    return Response(
        200,
        {
            "type": "user",
            "id": account.name,
            "name": account.name,
            "fullname": account.name,
            "email": f"{account.name}@users.noreply.localhost",
            "orgs": [{"type": "org", "name": org, "roleInOrg": "write"} for org in account.orgs],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test token", "role": "write"}},
        },
    )


def _front_matter(readme: str) -> dict[str, Any] | None:
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme, re.DOTALL)
    return (yaml.safe_load(match.group(1)) or {}) if match else None


@route("GET", rf"/api/{_TYPE}/{_REPO}(?:/revision/(?P<revision>[^/]+))?")
def repo_info(hub: HubServer, request: Request, type: str, repo: str, revision: str = "main") -> Response:
    stored = _readable(hub, request, type, repo)
    commit = _commit_of(hub, stored, revision)
    files = hub.store.files(stored.path, commit)
    with_blobs = request.flag("blobs")  # files_metadata=True
    siblings = [
        {"rfilename": path, **({"size": e["size"], "blobId": e["oid"]} if with_blobs else {})}
        for path, e in files.items()
    ]
    card = None
    if "README.md" in files:
        try:
            card = _front_matter(hub.store.blob(stored.path, files["README.md"]["oid"]).decode(errors="replace"))
        except yaml.YAMLError:
            card = None
    last = hub.store.log(stored.path, commit)[0]
    info: dict[str, Any] = {
        "_id": f"{type}/{repo}",
        "id": repo,
        "author": stored.namespace,
        "sha": commit,
        "private": stored.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": list((card or {}).get("tags") or []),
        "createdAt": _iso(stored.created_at),
        "lastModified": _iso(last.date.timestamp()),
        "siblings": siblings,
    }
    if type == "model":
        info["modelId"] = repo
    if card is not None:
        info["cardData"] = card
        for key in ("pipeline_tag", "library_name"):
            if key in card:
                info[key] = card[key]
    return Response(200, info)


@route("POST", rf"/api/{_TYPE}/{_REPO}/preupload/(?P<revision>[^/]+)")
def preupload(hub: HubServer, request: Request, type: str, repo: str, revision: str) -> Response:
    stored = _writable(hub, request, type, repo)
    commit = _commit_of(hub, stored, revision)
    existing = hub.store.files(stored.path, commit)
    answers = []
    for file in request.json().get("files", []):
        path = _check_path(file.get("path"))
        # "regular" for every file: contents come base64 in the commit, no LFS/Xet endpoint needed.
        # `oid` is the git blob sha of the file already there: the client compares it with the git
        # hash of its local file and leaves unchanged files out of the commit.
        answer = {"path": path, "uploadMode": "regular", "shouldIgnore": False}
        if path in existing:
            answer["oid"] = existing[path]["oid"]
        answers.append(answer)
    return Response(200, {"files": answers, "commitOid": commit})


@route("POST", rf"/api/{_TYPE}/{_REPO}/commit/(?P<revision>[^/]+)")
def commit(hub: HubServer, request: Request, type: str, repo: str, revision: str) -> Response:
    stored = _writable(hub, request, type, repo)
    if request.flag("create_pr"):
        raise HubError(400, "The test hub does not implement pull requests")
    _commit_of(hub, stored, revision)  # RevisionNotFound before "not a branch"
    branch = _branch_of(hub, stored, revision)
    header: dict[str, Any] | None = None
    additions: dict[str, bytes] = {}
    deleted_files: list[str] = []
    deleted_folders: list[str] = []
    for line in request.body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item.get("key"), item.get("value") or {}
        if key == "header":
            header = value
        elif key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
            additions[_check_path(value.get("path"))] = base64.b64decode(value.get("content", ""))
        elif key == "deletedFile":
            deleted_files.append(_check_path(value.get("path")))
        elif key == "deletedFolder":
            deleted_folders.append(_check_path(value.get("path").rstrip("/")))
        else:  # lfsFile: never asked for, since preupload answers "regular"
            raise HubError(400, f"The test hub does not accept {key!r} operations")
    if header is None or not header.get("summary"):
        raise HubError(400, "The commit needs a header line with a non-empty summary")
    message = header["summary"] + (f"\n\n{header['description']}" if header.get("description") else "")
    # An empty change set still makes a (empty) commit, as the Hub does; it is the client that
    # leaves unchanged files out and skips the request when nothing is left.
    oid = hub.store.commit(
        stored.path,
        branch,
        additions=additions,
        deleted_files=deleted_files,
        deleted_folders=deleted_folders,
        message=message,
        author=request.account.name if request.account else "anonymous",
        expected_parent=header.get("parentCommit"),
    )
    url = f"{hub.endpoint}/{URL_PREFIX[type]}{repo}/commit/{oid}"
    return Response(200, {"success": True, "commitOid": oid, "commitUrl": url, "hookOutput": ""})


@route("POST", rf"/api/{_TYPE}/{_REPO}/paths-info/(?P<revision>[^/]+)")
def paths_info(hub: HubServer, request: Request, type: str, repo: str, revision: str) -> Response:
    stored = _readable(hub, request, type, repo)
    commit = _commit_of(hub, stored, revision)
    form = parse_qs(request.body.decode())  # the client posts `paths` form-encoded, once per path
    found = [hub.store.entry(stored.path, commit, path.strip("/")) for path in form.get("paths", [])]
    return Response(200, [entry for entry in found if entry is not None])  # missing paths are left out


@route("GET", rf"/api/{_TYPE}/{_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?")
def tree(hub: HubServer, request: Request, type: str, repo: str, revision: str, path: str = "") -> Response:
    stored = _readable(hub, request, type, repo)
    commit = _commit_of(hub, stored, revision)
    path = path.strip("/")
    if path:
        entry = hub.store.entry(stored.path, commit, path)
        if entry is None or entry["type"] != "directory":
            raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers={"X-Repo-Commit": commit})
    return Response(200, hub.store.entries(stored.path, commit, path, recursive=request.flag("recursive")))


@route("GET", rf"/api/{_TYPE}/{_REPO}/refs")
def refs(hub: HubServer, request: Request, type: str, repo: str) -> Response:
    stored = _readable(hub, request, type, repo)

    def listing(prefix: str) -> list[dict[str, str]]:
        return [
            {"name": ref.removeprefix(prefix), "ref": ref, "targetCommit": oid}
            for ref, oid in hub.store.refs(stored.path).items()
            if ref.startswith(prefix)
        ]

    answer = {"branches": listing("refs/heads/"), "tags": listing("refs/tags/"), "converts": []}
    if request.flag("include_prs"):
        answer["pullRequests"] = []
    return Response(200, answer)


@route("GET", rf"/api/{_TYPE}/{_REPO}/commits/(?P<revision>[^/]+)")
def commits(hub: HubServer, request: Request, type: str, repo: str, revision: str) -> Response:
    stored = _readable(hub, request, type, repo)
    history = hub.store.log(stored.path, _commit_of(hub, stored, revision))
    # One page, no Link header: the client's paginate() stops there.
    return Response(
        200,
        [
            {
                "id": c.oid,
                "title": c.title,
                "message": c.message,
                "authors": [{"user": c.author}],
                "date": _iso(c.date.timestamp()),
            }
            for c in history
        ],
    )


@route("POST|DELETE", rf"/api/{_TYPE}/{_REPO}/branch/(?P<branch>[^/]+)")
def branch(hub: HubServer, request: Request, type: str, repo: str, branch: str) -> Response:
    stored = _writable(hub, request, type, repo)
    ref = f"refs/heads/{branch}"
    valid = subprocess.run(["git", "check-ref-format", ref], capture_output=True, check=False).returncode == 0
    if not valid or branch.startswith("refs/") or branch.startswith("-"):
        raise HubError(400, f"Invalid branch name: {branch}")
    with hub.store.write_lock:
        existing = hub.store.refs(stored.path).get(ref)
        if request.method == "DELETE":
            if existing is None:
                raise HubError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
            if branch == "main":
                raise HubError(403, "Cannot delete the main branch")
            hub.store.git(stored.path, "update-ref", "-d", ref, existing)
            return Response(200, {})
        if existing is not None:
            raise HubError(409, f"Reference already exists: {ref}")
        start = _commit_of(hub, stored, (request.json() or {}).get("startingPoint") or "main")
        hub.store.git(stored.path, "update-ref", ref, start, NULL_SHA)
    return Response(200, {})


@route("GET|HEAD", rf"/(?:(?P<type>datasets|spaces)/)?{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)")
def resolve(hub: HubServer, request: Request, repo: str, revision: str, path: str, type: str = "model") -> Response:
    stored = _readable(hub, request, type, repo)
    commit = _commit_of(hub, stored, revision)
    entry = hub.store.entry(stored.path, commit, path)
    if entry is None or entry["type"] != "file":
        # X-Repo-Commit on the 404 lets the client cache the file's absence for this commit.
        raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers={"X-Repo-Commit": commit})
    headers = {
        "X-Repo-Commit": commit,
        # Non-LFS files: the ETag is the git blob sha (quoted), as on the Hub; it names the blob
        # in the client's cache.
        "ETag": f'"{entry["oid"]}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    size = entry["size"]
    if request.method == "HEAD":
        return Response(200, b"", {**headers, "Content-Length": str(size)})
    content = hub.store.blob(stored.path, entry["oid"])
    byte_range = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range") or "")
    if byte_range and (byte_range.group(1) or byte_range.group(2)):
        # A resumed download (`Range: bytes=N-`) or a suffix (`bytes=-N`).
        first, last = byte_range.groups()
        start = int(first) if first else max(size - int(last), 0)
        end = int(last) if (first and last) else size - 1
        if start >= size:
            raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
        return Response(206, content[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{size}"})
    return Response(200, content, headers)


# ------------------------------------------------------------------------------------------ fixture


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A started `HubServer`, with huggingface_hub and transformers pointed at it for the test.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and the cache paths once, at import, into
    `huggingface_hub.constants`; the test session has long imported it with HF_HUB_OFFLINE=1. So
    the constants themselves are patched (the functions read them at call time), plus the few
    objects built from them at import: the module-level `HfApi` behind `huggingface_hub.upload_folder`
    & co., the trusted-origin set of the redirect check, and transformers' shared `HfApi`. The env
    vars are set as well, for subprocesses. Each test gets its own HF_HOME, so no cache is shared.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    server = HubServer(root=tmp_path / "hub-storage").start()
    endpoint = server.endpoint
    hf_home = tmp_path / "hf_home"
    cache = hf_home / "hub"
    cache.mkdir(parents=True)

    for name, value in {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    for name, value in {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,  # read by is_offline_mode() and the request hook, at call time
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache),
        "HUGGINGFACE_HUB_CACHE": str(cache),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),  # never read a developer's stored token
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
    }.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(endpoint)})
    # `huggingface_hub.create_repo`, `upload_folder`, ... are methods of one HfApi built at import.
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)

    try:
        import transformers.utils.hub as transformers_hub
    except ImportError:
        pass
    else:
        # transformers keeps one HfApi (push_to_hub, revision lookups), built on first use: drop it
        # so it is rebuilt on this endpoint, and restored afterwards.
        monkeypatch.setattr(transformers_hub, "_hf_api", None)
    try:
        import datasets.config as datasets_config
    except ImportError:
        pass
    else:
        # datasets copies the endpoint and offline flag into its own config at import.
        monkeypatch.setattr(datasets_config, "HF_ENDPOINT", endpoint)
        monkeypatch.setattr(
            datasets_config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
        )
        monkeypatch.setattr(datasets_config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", False)

    # A fresh shared HTTP client now and after: no connection or state carries over between tests.
    _http.close_session()
    try:
        yield server
    finally:
        _http.close_session()
        server.stop()
