"""Writing an export folder atomically, without ever deleting what a user wrote.

An export is staged in a hidden sibling folder and moved into place only once it is complete. An
existing folder is replaced only when it is empty or its manifest (``hf_prune_export.json``)
proves it is an hf_prune export; files a user added to that export since (notes, a README) are
carried over into the new one. Anything else at the path is refused before any work is done.

Example:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "export")
    >>> with atomic_directory(target) as staging:
    ...     open(os.path.join(staging, "a.txt"), "w").close()
    >>> os.listdir(target)
    ['a.txt']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import HfPruneError
from .formats import MANIFEST_FILE_NAME


class ExportTargetError(HfPruneError, FileExistsError):
    """An export path that cannot be written: a user's folder, a file, or under a file."""


def written_files(folder: str) -> list[str] | None:
    """The files an export's manifest says it wrote (``None`` for manifests without the list)."""
    try:
        with open(os.path.join(folder, MANIFEST_FILE_NAME), encoding="utf-8") as handle:
            files = json.load(handle).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(name) for name in files] if isinstance(files, list) else None


def check_export_target(output_dir: str | os.PathLike[str]) -> str:
    """The absolute export path, after checking an export may be written there.

    Call it before long work (training) so a bad path fails first.

    Raises:
        ExportTargetError: the path is a file, lies under a file, or is a non-empty folder that
            is not an hf_prune export (a Trainer ``output_dir``, a project folder).

    Example:
        >>> import tempfile
        >>> os.path.isabs(check_export_target(os.path.join(tempfile.mkdtemp(), "new")))
        True
    """
    if output_dir is None or not isinstance(output_dir, (str, os.PathLike)) or not os.fspath(output_dir):
        raise ExportTargetError(f"output_dir={output_dir!r} is not a folder path; pass e.g. 'outputs/pruned'.")
    path = os.path.abspath(output_dir)
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ExportTargetError(f"{path}: {parent} is a file, so no folder can be made under it; export elsewhere.")
    if os.path.isfile(path) or (os.path.exists(path) and not os.path.isdir(path)):
        raise ExportTargetError(f"{path} is a file; export into a new or empty folder instead.")
    if os.path.isdir(path) and os.listdir(path) and not os.path.isfile(os.path.join(path, MANIFEST_FILE_NAME)):
        raise ExportTargetError(
            f"{path} exists and is not an hf_prune export (no {MANIFEST_FILE_NAME}); refusing to replace it. "
            f"Export into a new or empty folder (not the Trainer's output_dir)."
        )
    return path


@contextmanager
def atomic_directory(output_dir: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a staging folder that replaces ``output_dir`` only if the block succeeds.

    See the module docstring for what may be replaced; files a user added to a previous export
    (not in its manifest's ``files``) are moved into the new folder unless the new export writes a
    file of the same name.
    """
    output_dir = check_export_target(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield staging
        _share(staging, umask)
        if os.path.exists(output_dir):
            _carry_over_user_files(output_dir, staging)
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=parent)
            os.rmdir(retired)
            os.replace(output_dir, retired)
            os.replace(staging, output_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _share(folder: str, umask: int) -> None:
    """Folders and files readable like the rest of the user's files (mkdtemp and some writers
    create them 0700 / 0600; an export is meant to be shared)."""
    os.chmod(folder, 0o777 & ~umask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


def _carry_over_user_files(old: str, new: str) -> None:
    """Move the files a user added to the old export (also inside its ``tasks/`` folders) into the new one."""
    written = written_files(old)
    if written is None:  # a manifest from before the files list: nothing is known to be the user's
        return
    listed = set(written)

    def export_wrote(path: str) -> bool:
        # Manifests before per-file listing named a folder (tasks) for everything below it.
        parts = path.split("/")
        return any("/".join(parts[:end]) in listed for end in range(1, len(parts) + 1))

    for path in files_under(old):
        target = os.path.join(new, *path.split("/"))
        if export_wrote(path) or os.path.lexists(target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(os.path.join(old, *path.split("/")), target)


def files_under(folder: str) -> list[str]:
    """Every file below ``folder``, as relative '/'-separated paths (the Hub's file names).

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, "tasks", "topic"))
        >>> for name in ("config.json", os.path.join("tasks", "topic", "config.json")):
        ...     open(os.path.join(root, name), "w").close()
        >>> files_under(root)
        ['config.json', 'tasks/topic/config.json']
    """
    names = []
    for root, folders, files in os.walk(folder):
        relative = os.path.relpath(root, folder)
        # A link to a folder is not walked into: it counts as one entry, like a file.
        for name in [*files, *(name for name in folders if os.path.islink(os.path.join(root, name)))]:
            path = name if relative == os.curdir else os.path.join(relative, name)
            names.append(path.replace(os.sep, "/"))
    return sorted(names)
