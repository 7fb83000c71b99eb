"""Render the model card of a real export into ``model_cards/examples/`` (README.md + plot).

The card is rendered again by this checkout's hf_prune (``hf_prune.cards.write_card``) from the
export's own files, so the example shows the current templates even for an export written by an
older hf_prune. What only the user knew when the export was written (evaluation results, the task
mixture, the model name) is read back from the export's existing card (its ``model-index``
metadata, its evaluation and mixture tables) and from ``results.json`` when the recipe runner
wrote one. The export itself is not changed: the card is rendered in a scratch copy (weights files
linked, not copied). ``--copy`` copies the export's cards as they are instead.

For a multitask export the example holds the shared model's card and every task's card, laid out
as in the export (``tasks/<task>/README.md``), so the links between them work in the examples too.

Usage (from the repository root):

    .venv/bin/python model_cards/render_examples.py --from outputs/demo
    .venv/bin/python model_cards/render_examples.py --from outputs/demo --name demo_multitask --repo-id me/demo

Writes ``model_cards/examples/<name>/`` (``<name>``: ``--name``, else the card's model name),
replacing what an earlier run wrote there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from huggingface_hub import ModelCard

from hf_prune.card_plot import PLOT_FILE_NAME
from hf_prune.cards import README_FILE_NAME, CardInfo, TaskResult, write_card

logger = logging.getLogger("render_examples")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "examples")
CARD_FILES = (README_FILE_NAME, PLOT_FILE_NAME)
REPORT = "pruning_report.json"


# --- what the export's card knew -----------------------------------------------------------------


def card_info_from_export(folder: str, *, repo_id: str | None = None, model_name: str | None = None) -> CardInfo:
    """The :class:`CardInfo` the export's card was written with, as far as the card and
    ``results.json`` record it: results (with their example counts, standard errors and dense
    baselines), task mixture and sampling, model name, base model, repo id and notes. License,
    language and datasets are left to ``write_card``, which finds them again from the export and
    the base model."""
    path = os.path.join(folder, README_FILE_NAME)
    if not os.path.isfile(path):
        return CardInfo(repo_id=repo_id, model_name=model_name)
    card = ModelCard.load(path)
    text = card.text
    extras = _eval_table(text)
    results = []
    for r in card.data.eval_results or []:
        split = r.dataset_split or "test"
        # write_card names a metric "<split> <type>" unless told otherwise: keep it untold
        metric_name = None if r.metric_name == f"{split} {r.metric_type}" else r.metric_name
        found = extras.get((str(r.task_name), str(metric_name or r.metric_type)), {})
        results.append(
            TaskResult(
                task=r.task_name,
                dataset_type=r.dataset_type,
                dataset_name=None if r.dataset_name == r.dataset_type else r.dataset_name,  # the default
                dataset_config=r.dataset_config,
                dataset_split=split,
                metric_type=r.metric_type,
                metric_name=metric_name,
                value=r.metric_value,
                task_type=r.task_type or "text-classification",
                **found,
            )
        )
    run = _read_json(os.path.join(folder, "results.json"))
    mixture = run.get("mixture_probabilities") or _mixture_table(text) or None
    sampling = re.search(r"in the share\s+below \((.+?)\)\.\n", text, re.S)
    notes = re.search(r"\n## Notes\n\n(.*?)\n\n## ", text, re.S)
    title = re.search(r"^# (.+)$", text, re.M)
    repo = re.search(r"^`([^`<>]+)` may also be ", text, re.M)  # the load note, when a repo id was given
    return CardInfo(
        model_name=model_name or card.data.model_name or (title.group(1).strip() if title else None),
        base_model=card.data.base_model or None,
        repo_id=repo_id or (repo.group(1) if repo else None),
        eval_results=results,
        task_mixture=mixture,
        mixture_sampling=" ".join(sampling.group(1).split()) if sampling else None,
        notes=notes.group(1).strip() if notes and notes.group(1).strip() != "No further notes." else None,
    )


def _eval_table(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(task, metric): {num_examples | stderr, dense_value}}`` from the card's results table
    (columns: task, dataset, split, metric, pruned, standard error, dense baseline)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        task = re.match(r"`([^`]+)` \(", cells[0]) if len(cells) == 7 else None
        if task is None:
            continue
        extra: dict[str, Any] = {}
        error = re.match(r"± ([0-9.eE+-]+)(?: \(binomial, n = ([0-9,]+)\))?", cells[5])
        if error and error.group(2):
            extra["num_examples"] = int(error.group(2).replace(",", ""))
        elif error:
            extra["stderr"] = float(error.group(1))
        try:
            extra["dense_value"] = float(cells[6])
        except ValueError:  # "not measured"
            pass
        found[(task.group(1), cells[3])] = extra
    return found


def _mixture_table(text: str) -> dict[str, float]:
    """``{task: sampling weight}`` from the card's task mixture table."""
    section = re.search(r"\n## Task mixture\n(.*?)\n## ", text, re.S)
    rows = re.findall(r"^\| `([^`]+)` \| ([0-9.eE+-]+) \|", section.group(1), re.M) if section else []
    return {task: float(weight) for task, weight in rows}


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return data if isinstance(data, dict) else {}


# --- rendering and copying -----------------------------------------------------------------------


def card_folders(folder: str) -> list[str]:
    """The folders (relative, ``""`` for the export itself) whose card the example shows: the
    export, and every task's own export of a multitask export."""
    tasks = _read_json(os.path.join(folder, REPORT)).get("tasks")
    found = [""]
    if isinstance(tasks, dict):
        for name, entry in tasks.items():
            relative = str(entry.get("folder") if isinstance(entry, dict) else "") or f"tasks/{name}"
            if os.path.isfile(os.path.join(folder, relative, REPORT)):
                found.append(relative)
    return found


def scratch_copy(folder: str, scratch: str) -> str:
    """A copy of the export to render in: weights files linked (only their headers are read), the rest copied."""
    target = os.path.join(scratch, os.path.basename(os.path.abspath(folder)))
    for root, _dirs, files in os.walk(folder):
        here = os.path.join(target, os.path.relpath(root, folder))
        os.makedirs(here, exist_ok=True)
        for name in files:
            source = os.path.abspath(os.path.join(root, name))
            if name.endswith((".safetensors", ".bin")):
                os.symlink(source, os.path.join(here, name))
            else:
                shutil.copy2(source, os.path.join(here, name))
    return target


def render_example(
    export: str,
    out: str = DEFAULT_OUT,
    *,
    name: str | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    copy_only: bool = False,
) -> str:
    """Render (or with ``copy_only``, copy) the cards of ``export`` into ``out/<name>/``; returns that folder."""
    if not os.path.isfile(os.path.join(export, REPORT)):
        raise SystemExit(f"{export} is not an hf_prune export (no {REPORT}); pass the folder save_pruned wrote.")
    with tempfile.TemporaryDirectory(prefix="hf-prune-card-") as scratch:
        source = export
        info = card_info_from_export(export, repo_id=repo_id, model_name=model_name)
        if not copy_only:
            source = scratch_copy(export, scratch)
            write_card(source, info)  # a multitask export's task cards are rewritten with it
        target = os.path.join(out, name or _slug(info.model_name or os.path.basename(os.path.abspath(export))))
        if os.path.isdir(target):
            shutil.rmtree(target)
        for relative in card_folders(source):
            os.makedirs(os.path.join(target, relative), exist_ok=True)
            for file in CARD_FILES:
                path = os.path.join(source, relative, file)
                if os.path.isfile(path):
                    shutil.copyfile(path, os.path.join(target, relative, file))
    return target


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "example"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="export", required=True, help="the export folder (what save_pruned wrote)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="where the examples go (default: model_cards/examples)")
    parser.add_argument("--name", help="the example's folder name (default: the card's model name)")
    parser.add_argument("--repo-id", help="the Hub repo the loading code names (default: a placeholder)")
    parser.add_argument("--model-name", help="the card's title (default: the one the export's card has)")
    parser.add_argument("--copy", action="store_true", help="copy the export's cards as they are, do not render")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = render_example(
        args.export, args.out, name=args.name, repo_id=args.repo_id, model_name=args.model_name, copy_only=args.copy
    )
    for root, _dirs, files in sorted(os.walk(target)):
        for file in sorted(files):
            print(os.path.relpath(os.path.join(root, file)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
