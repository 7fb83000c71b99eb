"""Publishing an export to the Hugging Face Hub in one commit, and loading it back by repo id.

:func:`push_pruned` checks that the folder is a complete hf_prune export (manifest, checksums),
creates the repo (and the branch, for a revision) when needed, and uploads every file the export
wrote (weights, config, pruning config and report, manifest, model card and plot) in one commit.
Unchanged files are not uploaded again, and a folder identical to what the repo holds makes no
commit at all; files of the export the repo held before that this one does not write (another
format's weights) are deleted in that commit. The commit names the head it was built on, so a
commit the client retries after losing its answer never lands twice. Failures (Hub unreachable,
5xx, timeout, bad token, no write access) raise :class:`HubPushError` naming the repo and what to
do; the local export is only read, so it stays complete, and pushing again uploads what is
missing. Tokens never appear in messages. ``run_as_future=True`` pushes in the background and
returns a ``Future`` at once (what ``Trainer.push_to_hub(blocking=False)`` returns), after the
same checks of the folder.

Load it back with ``hf_prune.load_pruned(repo_id, revision=...)`` (every format), or for the
dense format with plain ``AutoModel*.from_pretrained(repo_id)``.

Example:
    >>> # push_pruned("outputs/demo", "me/minilm-rpp-80", private=True)
    >>> # model = hf_prune.load_pruned("me/minilm-rpp-80")
    >>> # future = push_pruned("outputs/demo", "me/minilm-rpp-80", run_as_future=True); future.result()
"""

from __future__ import annotations

import glob
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .errors import HfPruneError, InvalidConfigError
from .export import read_report
from .formats import MANIFEST_FILE_NAME, MissingExportFileError, get_format, read_manifest

logger = logging.getLogger(__name__)

__all__ = ["HubPushError", "push_pruned"]


class HubPushError(HfPruneError, RuntimeError):
    """Publishing to the Hub failed; the local export is untouched and a retry is safe."""


def check_repo_id(repo_id: Any) -> str:
    """``repo_id`` if it is a valid Hub model id (``name`` or ``owner/name``).

    Raises:
        InvalidConfigError: naming the id and the rule it breaks.

    Example:
        >>> check_repo_id("me/minilm-pruned")
        'me/minilm-pruned'
        >>> check_repo_id("me/a b")
        Traceback (most recent call last):
        ...
        hf_prune.errors.InvalidConfigError: 'me/a b' is not a valid Hub repo id: Repo id must use alphanumeric chars, '-', '_' or '.'. The name cannot start or end with '-' or '.' and the maximum length is 96: 'me/a b'. Use 'name' or 'owner/name'.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(repo_id, str):
        raise InvalidConfigError(f"repo_id={repo_id!r} is not a string; use 'name' or 'owner/name'.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        reason = str(err).strip().rstrip(".")
        raise InvalidConfigError(
            f"{repo_id!r} is not a valid Hub repo id: {reason}. Use 'name' or 'owner/name'."
        ) from None
    return repo_id


def verify_export(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a complete, intact export; reads every weights file against its checksum.

    Raises:
        MissingExportFileError: not an export (no manifest or report), or a file is missing.
        ExportFormatError: a file is truncated or corrupted.
    """
    folder = os.fspath(folder)
    manifest = read_manifest(folder) if os.path.isdir(folder) else None
    if manifest is None:
        raise MissingExportFileError(
            f"{folder} is not an hf_prune export (no {MANIFEST_FILE_NAME}); push the folder save_pruned or "
            f"hf-prune train wrote."
        )
    missing = [name for name in manifest.get("files") or [] if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise MissingExportFileError(
            f"{folder} lacks {missing[:3]} that the export wrote; copy the whole folder again or export again."
        )
    report = read_report(folder)
    get_format(manifest["format"]).measure(folder, manifest, report.get("pruned_weights") or [])
    # A multitask export holds one complete export per task (tasks/<name>/): each is checked too.
    for name, entry in sorted((report.get("tasks") or {}).items()):
        task_folder = os.path.join(folder, *str(entry.get("folder", f"tasks/{name}")).split("/"))
        task_manifest = read_manifest(task_folder) if os.path.isdir(task_folder) else None
        if task_manifest is None:
            raise MissingExportFileError(
                f"{folder} lacks the export of task {name!r} ({task_folder}); copy the whole folder again or "
                f"export again."
            )
        get_format(task_manifest["format"]).measure(
            task_folder, task_manifest, read_report(task_folder).get("pruned_weights") or []
        )
    return manifest


def push_pruned(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    delete_patterns: list[str] | None = None,
    run_as_future: bool = False,
) -> Any:
    """Push an export folder to the Hub in one commit; returns the ``CommitInfo`` (or its ``Future``).

    When the repo already holds these files unchanged, no commit is made (the returned info is
    then the repo's latest commit). Files of the export the repo held before (listed in its
    manifest) that this export does not write are deleted in the same commit: a repo that held a
    dense export and now gets a compact one keeps no stale ``model.safetensors`` that plain
    ``from_pretrained`` would load.

    The commit names the branch head it was built on (``parent_commit``). So when the client
    retries a commit whose answer was lost (a timeout while the Hub was still writing it), the
    second copy is refused instead of landing twice, and the push then finds its files there.

    Args:
        folder: A folder written by ``save_pruned`` / ``hf-prune train``.
        repo_id: ``name`` or ``owner/name``; created if missing (``private`` applies then).
        revision: A branch; created from the default branch if missing.
        token: A Hub token (default: the logged-in one, or ``HF_TOKEN``).
        commit_message: Default: "Upload pruned model (<method>, <format>, sparsity <s>)".
        endpoint: Another Hub endpoint (default: ``HF_ENDPOINT`` or huggingface.co).
        delete_patterns: Remote files matching these are deleted in the same commit unless the
            export writes them (the trainer removes the checkpoint files it pushed during training).
        run_as_future: Push in the background (as ``huggingface_hub``'s ``run_as_future=True``
            and ``Trainer.push_to_hub(blocking=False)`` do) and return a
            ``concurrent.futures.Future`` of the ``CommitInfo`` at once. The repo id and the
            folder are still checked before this returns; a Hub failure is raised by
            ``future.result()`` as :class:`HubPushError`. Background pushes run one at a time, in
            the order they were asked for, and are finished before the interpreter exits. Leave
            the folder unchanged until the push is done: the files are read when they are sent
            (the folder is checked again just before).

    Raises:
        InvalidConfigError: an invalid repo id.
        MissingExportFileError / ExportFormatError: the folder is not a complete, intact export
            (checked before anything is sent).
        HubPushError: the Hub refused, failed or could not be reached; the message names the repo
            and what to do.

    Example:
        >>> # url = push_pruned("outputs/demo", "me/minilm-rpp-80")
        >>> # future = push_pruned("outputs/demo", "me/minilm-rpp-80", run_as_future=True)
        >>> # ... keep working ...; commit = future.result()
    """
    check_repo_id(repo_id)
    if not isinstance(run_as_future, bool):
        raise InvalidConfigError(f"run_as_future={run_as_future!r} must be True or False.")
    verify_export(folder)
    push = _Push(os.fspath(folder), repo_id, revision, private, token, commit_message, endpoint, delete_patterns)
    if not run_as_future:
        return push.run()
    return _background().submit(push.run_checked)


_BACKGROUND: ThreadPoolExecutor | None = None
_BACKGROUND_LOCK = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """One worker for every background push: pushes run in order, never two at once (two commits
    racing for one branch would only make each other retry), as ``HfApi.run_as_future`` does."""
    global _BACKGROUND
    with _BACKGROUND_LOCK:
        if _BACKGROUND is None:
            _BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf_prune-push")
        return _BACKGROUND


@dataclass(frozen=True)
class _Push:
    """One push of a checked export folder: what :func:`push_pruned` does after its checks."""

    folder: str
    repo_id: str
    revision: str | None
    private: bool | None
    token: str | bool | None
    commit_message: str | None
    endpoint: str | None
    delete_patterns: list[str] | None

    def run_checked(self) -> Any:
        """:meth:`run` after checking the folder again (a background push starts later: the
        folder may have changed or gone since, which must not read as a Hub failure)."""
        verify_export(self.folder)
        return self.run()

    def run(self) -> Any:
        import httpx2
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        folder, repo_id, revision, token = self.folder, self.repo_id, self.revision, self.token
        manifest = read_manifest(folder) or {}
        report = read_report(folder)
        message = self.commit_message or (
            f"Upload pruned model ({report.get('method')}, {manifest.get('format')}, sparsity "
            f"{float(report.get('saved_sparsity') or 0.0):.3f})"
        )
        files = list(manifest.get("files") or sorted(os.listdir(folder)))
        api = HfApi(endpoint=self.endpoint, token=token)
        where = f"{repo_id}" + (f"@{revision}" if revision else "")
        secret = token if isinstance(token, str) else None
        try:
            api.create_repo(repo_id, private=self.private, exist_ok=True)
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                head = api.repo_info(repo_id, revision=revision).sha
                stale = [glob.escape(name) for name in _previous_files(api, repo_id, head) if name not in files]
                try:
                    commit = api.upload_folder(
                        repo_id=repo_id,
                        folder_path=folder,
                        revision=revision,
                        commit_message=message,
                        allow_patterns=[glob.escape(name) for name in files],
                        delete_patterns=[*(self.delete_patterns or []), *stale] or None,
                        parent_commit=head,
                    )
                    break
                except HfHubHTTPError as err:
                    if _status(err) != 412 or attempt == _COMMIT_ATTEMPTS:
                        raise
                    # The branch moved since `head`: our own commit, completed after the client gave
                    # up on it, or someone else's. Build on the new head; unchanged files are skipped.
                    logger.info("%s moved while pushing; pushing again onto its new head.", where)
        except HfHubHTTPError as err:
            raise HubPushError(_scrub(_explain(err, where), secret)) from None
        except OfflineModeIsEnabled:
            raise HubPushError(
                f"Pushing to {where} failed: HF_HUB_OFFLINE=1 is set, so nothing may be sent to the Hub; unset it "
                f"and push again. The local export is unchanged."
            ) from None
        except httpx2.TimeoutException as err:
            raise HubPushError(
                _scrub(
                    f"Pushing to {where} failed: the Hub did not answer in time ({type(err).__name__}: "
                    f"{_first_line(err)}), even after the client's retries. The local export is unchanged; pushing "
                    f"again uploads only what is missing (a commit the Hub completed after the timeout is not made "
                    f"twice).",
                    secret,
                )
            ) from None
        except (httpx2.HTTPError, OSError) as err:  # connection refused, DNS, TLS, ...
            raise HubPushError(
                _scrub(
                    f"Pushing to {where} failed: the Hub at {api.endpoint} cannot be reached ({type(err).__name__}: "
                    f"{_first_line(err)}). Check the network and HF_ENDPOINT, then push again; the local export is "
                    f"unchanged, and pushing again uploads only what is missing.",
                    secret,
                )
            ) from None
        except ValueError as err:  # the client refused an answer or an argument
            raise HubPushError(
                _scrub(
                    f"Pushing to {where} failed ({type(err).__name__}: {_first_line(err)}). The local export is "
                    f"unchanged; pushing again uploads only what is missing.",
                    secret,
                )
            ) from None
        logger.info("Pushed %s to %s (%s)", folder, where, getattr(commit, "commit_url", None))
        return commit


# One push, then up to two more when the branch moved under it (HTTP 412).
_COMMIT_ATTEMPTS = 3


def _previous_files(api: Any, repo_id: str, commit: str | None) -> list[str]:
    """The files the export already in the repo at ``commit`` wrote (its manifest's ``files``)."""
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        path = api.hf_hub_download(repo_id, MANIFEST_FILE_NAME, revision=commit)
    except RemoteEntryNotFoundError:  # not an hf_prune export (yet)
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        return []
    names = previous.get("files") if isinstance(previous, dict) else None
    return [name for name in names or [] if isinstance(name, str) and name and name != ".gitattributes"]


def _status(err: Any) -> int | None:
    return getattr(getattr(err, "response", None), "status_code", None)


def _scrub(text: str, secret: str | None) -> str:
    """``text`` without the token (or the one the client would use), whatever the server echoed."""
    from huggingface_hub import get_token

    for value in {secret, get_token()}:
        if value:
            text = text.replace(value, "***")
    return text


def _explain(err: Any, where: str) -> str:
    """A one-line reason for an HTTP failure, with the fix; never the token."""
    status = _status(err)
    if status == 401:
        reason = "the token is missing or invalid: log in (hf auth login) or set HF_TOKEN"
    elif status == 403:
        reason = "the token may not write to this repo: use a repo under your own name or a token with write access"
    elif status == 412:
        reason = "the branch kept moving while pushing (someone else is pushing to it): push again when they are done"
    elif status == 404:
        reason = "the repo or revision does not exist and could not be created: check the id and your rights"
    elif status is not None and status >= 500:
        reason = f"the Hub answered {status} (a server error): push again later"
    else:
        reason = f"the Hub answered {status}: {_first_line(err)}"
    return (
        f"Pushing to {where} failed: {reason}. The local export is unchanged; pushing again uploads only what "
        f"is missing."
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
