"""Bad-input battery: hf_prune tried as a new user would, with bad or edge inputs, each outcome classified.

Run (from the repository root; under a minute on 2 cores, offline, everything in temporary folders)::

    .venv/bin/python benchmarks/bad_input_battery.py

Every case has a name, an area, a call and, for bad input, the substrings (the bad value, field
or file) a clear error message must contain. Outcomes:

* ``clear``: an ``hf_prune.errors.HfPruneError`` whose message contains every expected substring;
  for the CLI, exit code 2 with exactly one ``error: ...`` line on stderr and no traceback; for
  cases that must warn, a logged warning containing the substrings.
* ``unclear``: any other exception (raw torch / safetensors / transformers / yaml error,
  TypeError, ...), an HfPruneError without the expected substring, or a CLI traceback / exit 1.
* ``wrong``: bad input silently accepted, a user's file deleted, a damaged file loaded, a
  promised warning missing, or a valid edge input refused.
* ``ok``: a valid edge input that must work, and did.

Writes ``benchmarks/results/bad_input_battery.json`` (every case) and ``.md`` (counts per
classification and per area, then every case that is neither clear nor ok), with the machine and
code version. Cases run in-process (the CLI through ``hf_prune.cli.main`` with stderr captured; a
recipe that ``hf-prune train`` accepts is stopped before any training and counted as accepted),
plus two real ``hf-prune`` subprocesses that check the installed entry point the same way.
The battery only reports: it never changes library code, and a case that is wrong or unclear
today stays in the table until the library is fixed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
import yaml  # noqa: E402
from datasets import Dataset  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    Trainer,
    TrainingArguments,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine_info, write_json, write_text  # noqa: E402

import hf_prune.cli  # noqa: E402
import hf_prune.recipe  # noqa: E402
from hf_prune import (  # noqa: E402
    FrozenMaskConfig,
    MagnitudeConfig,
    MovementConfig,
    PruningCallback,
    PruningConfig,
    PruningTrainer,
    RankConfig,
    RPPConfig,
    create_method,
    find_targets,
    load_pruned,
    read_report,
    save_pruned,
)
from hf_prune.checkpointing import STATE_FILE_NAME, load_method_state  # noqa: E402
from hf_prune.cli import main as cli_main  # noqa: E402
from hf_prune.errors import HfPruneError  # noqa: E402
from hf_prune.recipe import Recipe  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB, SEQ, HIDDEN = 100, 12, 32
CLASSES = ("clear", "unclear", "wrong", "ok")
AREAS = (
    "config",
    "trainer/callback",
    "recipe",
    "CLI",
    "export",
    "load",
    "checkpoint/resume",
    "model/targets",
    "plain loop",
)


# =========================================================================== outcomes
class Wrong(Exception):
    """Raised by a case when the library did something wrong without raising (data loss, a damaged
    file loaded, a warning missing)."""


@dataclass
class Warned:
    """A case that must warn returns the warnings it captured."""

    text: str


@dataclass
class CliRun:
    """What a user sees from one ``hf-prune`` invocation."""

    code: int
    stderr: str
    accepted: bool = False  # `train` got past every check and would start training
    escaped: BaseException | None = None  # an exception that escaped main (a traceback)


@dataclass
class Case:
    name: str
    run: Callable[[], Any]
    expect: tuple[str, ...] = ()  # substrings a clear message contains (case-insensitive)
    valid: bool = False  # a valid edge input that must work
    area: str = ""  # set by in_area()


def in_area(area: str, cases: list[Case]) -> list[Case]:
    """One area's table of cases."""
    for case in cases:
        case.area = area
    return cases


@dataclass
class Result:
    name: str
    area: str
    classification: str
    exception_type: str | None
    message: str
    expected: list[str] = field(default_factory=list)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _has_all(message: str, expect: tuple[str, ...]) -> bool:
    return all(part.lower() in message.lower() for part in expect)


def _cli_error_lines(stderr: str) -> list[str]:
    """stderr without argparse's usage block (which precedes its own ``error:`` line)."""
    lines, in_usage = [], False
    for line in stderr.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and (line.startswith(" ") or not line.strip()):
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def classify(case: Case) -> Result:
    kind, etype, message = _classify(case)
    message = message.replace(FX.root, "<tmp>")  # stable across runs
    return Result(case.name, case.area, kind, etype, _short(message), list(case.expect))


def _classify(case: Case) -> tuple[str, str | None, str]:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer's log dicts: one progress line per case
            value = case.run()
    except Wrong as err:
        return "wrong", "Wrong", str(err)
    except Exception as err:  # noqa: BLE001  (classifying every failure is the point)
        message = str(err) or repr(err)
        if case.valid:
            return "wrong", type(err).__name__, f"valid input refused: {message}"
        if isinstance(err, HfPruneError) and _has_all(message, case.expect):
            return "clear", type(err).__name__, message
        detail = "" if isinstance(err, HfPruneError) else f" [at {_where(err)}]"
        note = f" (expected {list(case.expect)} in the message)" if isinstance(err, HfPruneError) else ""
        return "unclear", type(err).__name__, message + note + detail
    if isinstance(value, Warned):
        if value.text and _has_all(value.text, case.expect):
            return "clear", "warning", value.text
        if value.text:
            return "unclear", "warning", f"{value.text} (expected {list(case.expect)})"
        return "wrong", None, "no warning was logged"
    if isinstance(value, CliRun):
        return _classify_cli(case, value)
    if case.valid:
        return "ok", None, value if isinstance(value, str) else ""
    detail = f": {value}" if isinstance(value, str) else ""
    return "wrong", None, f"accepted without an error{detail}"


def _classify_cli(case: Case, run: CliRun) -> tuple[str, str | None, str]:
    lines = _cli_error_lines(run.stderr)
    text = " | ".join(lines)
    if case.valid:
        return ("ok", None, "") if run.code == 0 else ("wrong", f"exit {run.code}", f"valid input refused: {text}")
    if run.accepted:
        return "wrong", "exit 0", "recipe accepted: training would start " + (f"({text})" if text else "")
    if run.code == 0:
        return "wrong", "exit 0", "exit code 0 " + (f"({text})" if text else "")
    if run.escaped is not None:
        return (
            "unclear",
            f"exit 1 traceback: {type(run.escaped).__name__}",
            str(run.escaped) + f" [at {_where(run.escaped)}]",
        )
    if "Traceback" in run.stderr:
        return "unclear", f"exit {run.code} traceback", text
    one_error_line = len(lines) == 1 and re.match(r"^(hf-prune( \w+)?: )?error: ", lines[0])
    if run.code == 2 and one_error_line and _has_all(lines[0], case.expect):
        return "clear", "exit 2", lines[0]
    why = "" if run.code == 2 and one_error_line else f" (exit {run.code}, {len(lines)} stderr lines)"
    return (
        "unclear",
        f"exit {run.code}",
        text + why + ("" if _has_all(text, case.expect) else f" (expected {list(case.expect)})"),
    )


def _where(err: BaseException) -> str:
    """The innermost frame of a traceback: where a raw error came from."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "?"
    frame = frames[-1]
    path = frame.filename
    for marker in ("site-packages/", ROOT + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{frame.lineno}"


# =========================================================================== tiny models and data
_BERT = dict(
    vocab_size=VOCAB,
    hidden_size=HIDDEN,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    num_labels=2,
    num_hidden_layers=2,
)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**_BERT))


def tiny_dataset(n: int = 32) -> Dataset:
    """Token sequences whose label is whether token 7 appears."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (n, SEQ), generator=generator)
    ids[: n // 2, 3] = 7
    labels = (ids == 7).any(dim=1).long()
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n, "labels": labels.tolist()})


def batch_loss(model: nn.Module, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(3, VOCAB, (4, 8), generator=torch.Generator().manual_seed(seed))
    return model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss


def args(output_dir: str, **overrides: Any) -> TrainingArguments:
    defaults: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        max_steps=4,
        seed=0,
        report_to="none",
        save_strategy="no",
        logging_steps=2,
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
    )
    defaults.update(overrides)
    return TrainingArguments(**defaults)


MAGNITUDE = dict(target_sparsity=0.5, prune_interval=1, begin_step=1, end_step=3)
RPP = dict(target_sparsity=0.5, begin_step=1, end_step=3)
MOVEMENT = dict(target_sparsity=0.5, begin_step=1, end_step=3)
RANK = dict(target_params_fraction=0.5, begin_step=1, end_step=3)
CONFIGS: dict[str, Callable[[], PruningConfig]] = {
    "magnitude": lambda: MagnitudeConfig(**MAGNITUDE),
    "rpp": lambda: RPPConfig(**RPP),
    "movement": lambda: MovementConfig(**MOVEMENT),
    "rank": lambda: RankConfig(**RANK),
}


# =========================================================================== shared fixtures
class Fixtures:
    """Temporary folders, and the runs and exports several cases start from (built once, copied)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._count = 0
        self._cache: dict[str, str] = {}
        self.dataset = tiny_dataset()

    def tmp(self, name: str = "case") -> str:
        self._count += 1
        path = os.path.join(self.root, f"{self._count:03d}-{name}")
        os.makedirs(path)
        return path

    def fresh(self, folder: str) -> str:
        """A private copy of a cached folder, for a case that damages it."""
        copy = os.path.join(self.tmp("copy"), os.path.basename(folder))
        shutil.copytree(folder, copy)
        return copy

    def trainer(self, config: PruningConfig | None, output_dir: str | None = None, model=None, **overrides):
        return PruningTrainer(
            model=model if model is not None else tiny_bert(),
            args=args(output_dir or self.tmp("run"), **overrides),
            train_dataset=self.dataset,
            eval_dataset=self.dataset,
            pruning=config,
        )

    def checkpoint(self, method: str) -> str:
        """``checkpoint-2`` of a 4-step PruningTrainer run of ``method`` (cached; copy before damaging)."""
        key = f"checkpoint-{method}"
        if key not in self._cache:
            out = self.tmp(key)
            self.trainer(CONFIGS[method](), out, save_strategy="steps", save_steps=2).train()
            self._cache[key] = os.path.join(out, "checkpoint-2")
        return self._cache[key]

    def plain_checkpoint(self) -> str:
        key = "checkpoint-plain"
        if key not in self._cache:
            out = self.tmp(key)
            self.trainer(None, out, save_strategy="steps", save_steps=2).train()
            self._cache[key] = os.path.join(out, "checkpoint-2")
        return self._cache[key]

    def export(self, fmt: str) -> str:
        """An export in ``fmt`` (dense/compact of magnitude pruning, factored of rank pruning), cached."""
        key = f"export-{fmt}"
        if key not in self._cache:
            model, method = pruned("rank" if fmt == "factored" else "magnitude")
            path = os.path.join(self.tmp(key), "out")
            save_pruned(model, path, method, format=fmt)
            self._cache[key] = path
        return self._cache[key]

    def model_folder(self) -> str:
        """A tiny BERT saved with ``save_pretrained`` (a local model path for recipes)."""
        key = "model"
        if key not in self._cache:
            path = os.path.join(self.tmp(key), "tiny-bert")
            tiny_bert().save_pretrained(path)
            self._cache[key] = path
        return self._cache[key]


FX: Fixtures  # set in main()


def pruned(method_name: str, steps: int = 4):
    """``(model, method)`` after a plain loop of ``steps`` steps that runs the schedule to its end."""
    model = tiny_bert()
    method = create_method(CONFIGS[method_name]())
    method.attach(model)
    method.begin(steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        optimizer.step()
        method.step(step, optimizer)
    return model, method


# =========================================================================== small helpers
def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def damage(path: str, how: str) -> None:
    """Damage a file the way a bad copy or disk does: ``empty``, ``truncated``, ``garbled``
    (header bytes zeroed), ``flipped`` (one bit of the last data byte), ``header-flipped`` (one
    character of the JSON header changed)."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    if how == "empty":
        data = bytearray()
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "garbled":
        data[:16] = b"\x00" * 16
    elif how == "flipped":
        data[-1] ^= 0x01
    elif how == "header-flipped":
        index = data.index(b'"', 8)  # the first quote of the JSON header
        data[index] = ord("{")
    else:
        raise ValueError(how)
    with open(path, "wb") as handle:
        handle.write(bytes(data))


def flip_value(path: str) -> None:
    """Change one stored value of a dense weights file, keeping its size (a silent corruption)."""
    tensors = load_file(path)
    key = next(k for k in tensors if k.endswith("attention.self.query.weight"))
    tensors[key].view(-1)[0] += 1.0
    save_file(tensors, path, metadata={"format": "pt"})


def edit_json(path: str, change: Callable[[Any], Any]) -> None:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    data = change(data)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def snapshot(folder: str) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, folder)] = handle.read()
    return files


def keeping(folder: str, call: Callable[[], Any]) -> Any:
    """Run ``call``; raise :class:`Wrong` if any file that was in ``folder`` is gone or changed
    afterwards (even when ``call`` raised), else return or re-raise what ``call`` did."""
    before = snapshot(folder) if os.path.isdir(folder) else {}
    error: BaseException | None = None
    value = None
    try:
        value = call()
    except Exception as err:  # noqa: BLE001
        error = err
    after = snapshot(folder) if os.path.isdir(folder) else {}
    lost = [name for name in before if name not in after]
    changed = [name for name in before if name in after and after[name] != before[name]]
    if lost or changed:
        raise Wrong(
            f"user files lost {lost} / changed {changed} in {folder}" + (f" (and it raised: {error})" if error else "")
        )
    if error is not None:
        raise error
    return value


@contextlib.contextmanager
def captured_warnings(logger_name: str = "hf_prune") -> Iterator[list[str]]:
    records: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                records.append(record.getMessage())

    handler = Handler()
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


class _Accepted(Exception):
    """Raised by the stand-in for ``run_recipe``: the recipe passed every check."""


def cli(*argv: str) -> CliRun:
    """``hf-prune argv`` in-process with stderr captured; ``train`` stops before any training."""
    stderr = io.StringIO()
    modules = [m for m in (hf_prune.recipe, hf_prune.cli) if hasattr(m, "run_recipe")]
    originals = [m.run_recipe for m in modules]

    def accepted(recipe):
        raise _Accepted(recipe)

    for module in modules:  # wherever main() looks run_recipe up
        module.run_recipe = accepted
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(list(argv))
        return CliRun(int(code or 0), stderr.getvalue())
    except _Accepted:
        return CliRun(0, stderr.getvalue(), accepted=True)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # Python prints the message and exits 1
            return CliRun(1, stderr.getvalue() + exit_.code + "\n")
        return CliRun(int(exit_.code or 0), stderr.getvalue())
    except Exception as err:  # noqa: BLE001  (the user would see a traceback, exit 1)
        return CliRun(1, stderr.getvalue() + "Traceback (most recent call last): ...\n", escaped=err)
    finally:
        for module, original in zip(modules, originals):
            module.run_recipe = original


def cli_subprocess(*argv: str) -> CliRun:
    """The installed ``hf-prune`` entry point in a real process (what a user runs)."""
    exe = os.path.join(os.path.dirname(sys.executable), "hf-prune")
    command = [exe, *argv] if os.path.exists(exe) else [sys.executable, "-m", "hf_prune.cli", *argv]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    # Drop the log lines main() prints (logging.basicConfig at INFO goes to stderr).
    stderr = "\n".join(line for line in done.stderr.splitlines() if not re.match(r"^(DEBUG|INFO|WARNING) \S+: ", line))
    return CliRun(done.returncode, stderr)


# =========================================================================== recipes
def recipe_text(**changes: Any) -> str:
    """A valid recipe YAML (tiny local model, magnitude pruning), with top-level keys changed;
    a value of ``None`` removes the key, a dict under ``pruning``/``training`` is merged."""
    data: dict[str, Any] = {
        "name": "battery",
        "model": FX.model_folder(),
        "task": "movie_sentiment",
        "max_length": 16,
        "output_dir": os.path.join(FX.tmp("recipe-out"), "export"),
        "dense_baseline": False,
        "pruning": {"method": "magnitude", "target_sparsity": 0.5},
        "training": {"max_steps": 4, "per_device_train_batch_size": 4},
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif key == "pruning" and isinstance(value, dict) and "method" in value:
            data[key] = value
        elif key in ("pruning", "training") and isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def recipe_file(text: str | None = None, **changes: Any) -> str:
    return write(os.path.join(FX.tmp("recipe"), "recipe.yaml"), text if text is not None else recipe_text(**changes))


def load_recipe(text: str | None = None, **changes: Any) -> None:
    Recipe.from_yaml(recipe_file(text, **changes))


def user_folder(with_report: bool = False) -> str:
    """A user's own folder: notes, and optionally a stray ``pruning_report.json``."""
    folder = os.path.join(FX.tmp("user"), "my_project")
    write(os.path.join(folder, "my_notes.txt"), "do not delete me\n")
    if with_report:
        write(os.path.join(folder, "pruning_report.json"), "{}")
    return folder


def a_file() -> str:
    return write(os.path.join(FX.tmp("file"), "a_file.txt"), "x")


# =========================================================================== config cases
def _rank_method_on_tiny_model(config: RankConfig) -> None:
    create_method(config).attach(tiny_bert())


def _config_load(content: str) -> None:
    folder = FX.tmp("cfg")
    write(os.path.join(folder, "hf_prune_config.json"), content)
    PruningConfig.load(folder)


def _config_roundtrip_tuple() -> str:
    config = RPPConfig(include=("query", "value"))
    again = PruningConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    if again != config:
        raise Wrong(f"round trip changed the config: {again}")
    return ""


CONFIG_CASES = in_area(
    "config",
    [
        Case(
            "keyword typo targt_sparsity", lambda: RPPConfig(targt_sparsity=0.8), ("targt_sparsity", "target_sparsity")
        ),
        Case(
            "keyword typo sparsity_distrib",
            lambda: MagnitudeConfig(sparsity_distrib="global"),
            ("sparsity_distrib", "sparsity_distribution"),
        ),
        Case("unknown keyword num_steps", lambda: RPPConfig(num_steps=100), ("num_steps",)),
        Case(
            "field of another method: RankConfig(target_sparsity=)",
            lambda: RankConfig(target_sparsity=0.8),
            ("target_sparsity",),
        ),
        Case(
            "field of another method: RPPConfig(prune_interval=)",
            lambda: RPPConfig(prune_interval=5),
            ("prune_interval", "magnitude"),
        ),
        Case(
            "field of another method: FrozenMaskConfig(target_sparsity=)",
            lambda: FrozenMaskConfig(target_sparsity=0.5),
            ("target_sparsity",),
        ),
        Case(
            "renamed field RankConfig(warmup_steps=)",
            lambda: RankConfig(warmup_steps=10),
            ("warmup_steps", "warmup_end_step"),
        ),
        Case(
            "Literal sparsity_distribution='even'",
            lambda: MagnitudeConfig(sparsity_distribution="even"),
            ("'even'", "per_matrix", "global"),
        ),
        Case("Literal RPP threshold='adamw'", lambda: RPPConfig(threshold="adamw"), ("'adamw'", "plain", "adam")),
        Case("Literal RPP gamma_control='on'", lambda: RPPConfig(gamma_control="on"), ("'on'", "per_matrix")),
        Case(
            "Literal movement variant='medium'", lambda: MovementConfig(variant="medium"), ("'medium'", "hard", "soft")
        ),
        Case(
            "Literal movement score_init='random'",
            lambda: MovementConfig(score_init="random"),
            ("'random'", "magnitude", "zeros"),
        ),
        Case(
            "Literal rank budget_of='model'", lambda: RankConfig(budget_of="model"), ("'model'", "prunable", "encoder")
        ),
        Case("create_method('rpp')", lambda: create_method("rpp"), ("'rpp'", "RPPConfig")),
        Case("create_method({'method': 'rpp'})", lambda: create_method({"method": "rpp"}), ("dict", "from_dict")),
        Case("create_method(None)", lambda: create_method(None), ("None",)),
        Case("create_method(RPPConfig class, not instance)", lambda: create_method(RPPConfig), ("RPPConfig",)),
        Case("target_sparsity=1.5", lambda: RPPConfig(target_sparsity=1.5), ("target_sparsity", "1.5")),
        Case(
            "target_sparsity=1.0 (nothing left)",
            lambda: MagnitudeConfig(target_sparsity=1.0),
            ("target_sparsity", "1.0"),
        ),
        Case("target_sparsity=-0.1", lambda: MagnitudeConfig(target_sparsity=-0.1), ("target_sparsity", "-0.1")),
        Case(
            "target_sparsity='0.8' (a string)", lambda: RPPConfig(target_sparsity="0.8"), ("target_sparsity", "'0.8'")
        ),
        Case("target_sparsity=True (a bool)", lambda: RPPConfig(target_sparsity=True), ("target_sparsity", "True")),
        Case("target_sparsity=nan", lambda: RPPConfig(target_sparsity=float("nan")), ("target_sparsity", "nan")),
        Case("target_sparsity=None", lambda: RPPConfig(target_sparsity=None), ("target_sparsity", "None")),
        Case("positional RPPConfig(0.8)", lambda: RPPConfig(0.8), ("keyword",)),
        Case(
            "begin_fraction after end_fraction",
            lambda: MagnitudeConfig(begin_fraction=0.8, end_fraction=0.2),
            ("begin_fraction", "end_fraction"),
        ),
        Case("end_fraction=1.5", lambda: MagnitudeConfig(end_fraction=1.5), ("end_fraction", "1.5")),
        Case("begin_step=-1", lambda: MagnitudeConfig(begin_step=-1), ("begin_step", "-1")),
        Case(
            "begin_step after end_step", lambda: MagnitudeConfig(begin_step=10, end_step=5), ("begin_step", "end_step")
        ),
        Case("begin_step=1.5 (float for int)", lambda: MagnitudeConfig(begin_step=1.5), ("begin_step", "1.5")),
        Case("prune_interval=0", lambda: MagnitudeConfig(prune_interval=0), ("prune_interval", "0")),
        Case(
            "initial_sparsity above target",
            lambda: MagnitudeConfig(initial_sparsity=0.9, target_sparsity=0.5),
            ("initial_sparsity",),
        ),
        Case("RPP gamma=0", lambda: RPPConfig(gamma=0.0), ("gamma", "0")),
        Case("RPP epsilon=-1", lambda: RPPConfig(epsilon=-1.0), ("epsilon", "-1")),
        Case("RPP reweight_interval=0", lambda: RPPConfig(reweight_interval=0), ("reweight_interval", "0")),
        Case(
            "movement score_learning_rate=-1",
            lambda: MovementConfig(score_learning_rate=-1.0),
            ("score_learning_rate", "-1"),
        ),
        Case(
            "include='attention' (a string, not a list)",
            lambda: RPPConfig(include="attention"),
            ("include", "'attention'"),
        ),
        Case("exclude=[1] (not strings)", lambda: RPPConfig(exclude=[1]), ("exclude", "1")),
        Case("include_embeddings='yes'", lambda: RPPConfig(include_embeddings="yes"), ("include_embeddings", "'yes'")),
        Case(
            "rank target_params_fraction=0",
            lambda: RankConfig(target_params_fraction=0.0),
            ("target_params_fraction", "0"),
        ),
        Case(
            "rank target_params_fraction=1.2",
            lambda: RankConfig(target_params_fraction=1.2),
            ("target_params_fraction", "1.2"),
        ),
        Case("rank include_embeddings=True", lambda: RankConfig(include_embeddings=True), ("include_embeddings",)),
        Case("rank log_alpha_init=0 (gates not open)", lambda: RankConfig(log_alpha_init=0.0), ("log_alpha_init",)),
        Case("rank stretch_left=0.1", lambda: RankConfig(stretch_left=0.1), ("stretch_left", "0.1")),
        Case(
            "rank warmup_fraction after end_fraction",
            lambda: RankConfig(warmup_fraction=0.9, end_fraction=0.5),
            ("warmup_fraction", "end_fraction"),
        ),
        Case(
            "rank target_params_fraction unreachable (1e-4)",
            lambda: _rank_method_on_tiny_model(RankConfig(target_params_fraction=1e-4)),
            ("target_params_fraction", "unreachable"),
        ),
        Case("from_dict unknown method 'rp'", lambda: PruningConfig.from_dict({"method": "rp"}), ("'rp'", "rpp")),
        Case("from_dict without 'method'", lambda: PruningConfig.from_dict({"target_sparsity": 0.5}), ("method",)),
        Case("from_dict of a string 'rpp'", lambda: PruningConfig.from_dict("rpp"), ("rpp",)),
        Case(
            "MagnitudeConfig.from_dict of an rpp dict",
            lambda: MagnitudeConfig.from_dict({"method": "rpp"}),
            ("rpp", "PruningConfig.from_dict"),
        ),
        Case("PruningConfig.load: invalid JSON", lambda: _config_load("{not json"), ("hf_prune_config.json", "JSON")),
        Case("PruningConfig.load: a JSON list", lambda: _config_load("[1, 2]"), ("hf_prune_config.json", "list")),
        Case(
            "PruningConfig.load: newer layout version",
            lambda: _config_load('{"hf_prune_config_version": 99, "method": "rpp"}'),
            ("99", "upgrade"),
        ),
        Case(
            "PruningConfig.load: missing folder",
            lambda: PruningConfig.load(os.path.join(FX.tmp("cfg"), "nowhere")),
            ("nowhere",),
        ),
        Case("valid edge: target_sparsity=0.0", lambda: RPPConfig(target_sparsity=0.0), valid=True),
        Case("valid edge: include as a tuple round-trips", _config_roundtrip_tuple, valid=True),
        Case(
            "valid edge: sparsity_distribution='global'",
            lambda: MagnitudeConfig(sparsity_distribution="global"),
            valid=True,
        ),
    ],
)


# =========================================================================== trainer / callback cases
def _trainer_with(pruning: Any, **kwargs: Any) -> None:
    FX.trainer(pruning, **kwargs)


def _stock_trainer_with_callback(config: PruningConfig, model=None) -> Trainer:
    return Trainer(
        model=model if model is not None else tiny_bert(),
        args=args(FX.tmp("stock")),
        train_dataset=FX.dataset,
        callbacks=[PruningCallback(config)],
    )


def _method_reused_for_two_models() -> None:
    method = create_method(MagnitudeConfig(**MAGNITUDE))
    FX.trainer(method)
    FX.trainer(method)  # a second Trainer, a second model, the same method object


def _trial_function_returning_a_name() -> None:
    PruningTrainer(
        model_init=lambda: tiny_bert(), args=args(FX.tmp("mi")), train_dataset=FX.dataset, pruning=lambda trial: "rpp"
    ).train()


def _stock_model_init_rank() -> None:
    Trainer(
        model_init=lambda: tiny_bert(),
        args=args(FX.tmp("stock-mi")),
        train_dataset=FX.dataset,
        callbacks=[PruningCallback(RankConfig(**RANK))],
    ).train()


def _pruning_trainer_model_init_rank() -> str:
    trainer = PruningTrainer(
        model_init=lambda: tiny_bert(), args=args(FX.tmp("mi")), train_dataset=FX.dataset, pruning=RankConfig(**RANK)
    )
    trainer.train()
    return ""


def _save_pruned_without_pruning() -> None:
    trainer = FX.trainer(None)
    trainer.train()
    trainer.save_pruned(os.path.join(FX.tmp("out"), "out"))


def _evaluate_then_save_pruned() -> Warned:
    trainer = FX.trainer(MagnitudeConfig(target_sparsity=0.5))
    trainer.evaluate()
    with captured_warnings() as records:
        trainer.save_pruned(os.path.join(FX.tmp("out"), "out"))
    return Warned(" | ".join(records))


def _save_pruned_before_train() -> Warned:
    trainer = FX.trainer(RPPConfig(target_sparsity=0.5))
    with captured_warnings() as records:
        trainer.save_pruned(os.path.join(FX.tmp("out"), "out"))
    return Warned(" | ".join(records))


def _trainer_export(config: PruningConfig, fmt: str) -> None:
    trainer = FX.trainer(config)
    trainer.train()
    trainer.save_pruned(os.path.join(FX.tmp("out"), "out"), format=fmt)


def _schedule_longer_than_run() -> str:
    trainer = FX.trainer(MagnitudeConfig(target_sparsity=0.5, prune_interval=1, begin_step=1, end_step=50))
    trainer.train()
    sparsity = trainer.pruning_method.sparsity()
    if abs(sparsity - 0.5) > 0.01:
        raise Wrong(f"run ended before the schedule and the model is at sparsity {sparsity:.3f}, not 0.5")
    return f"sparsity {sparsity:.3f}"


def _gradient_accumulation() -> str:
    trainer = FX.trainer(MagnitudeConfig(**MAGNITUDE), gradient_accumulation_steps=2, per_device_train_batch_size=4)
    trainer.train()
    return ""


def _include_tuple_trainer() -> str:
    trainer = FX.trainer(RPPConfig(include=("query", "value"), **RPP))
    trainer.train()
    names = list(trainer.pruning_method.targets)
    if not names or not all(re.search("query|value", n) for n in names):
        raise Wrong(f"targets do not follow include=('query', 'value'): {names}")
    return ""


def _stock_trainer_and_callback_export() -> str:
    callback = PruningCallback(MagnitudeConfig(**MAGNITUDE))
    trainer = Trainer(model=tiny_bert(), args=args(FX.tmp("stock")), train_dataset=FX.dataset, callbacks=[callback])
    trainer.train()
    save_pruned(trainer.model, os.path.join(FX.tmp("out"), "out"), callback.method, format="compact")
    return ""


def _train_twice() -> str:
    trainer = FX.trainer(MagnitudeConfig(**MAGNITUDE))
    trainer.train()
    trainer.train()  # a second train() on the same trainer (a user re-running a cell)
    sparsity = trainer.pruning_method.sparsity()
    if abs(sparsity - 0.5) > 0.01:
        raise Wrong(f"after a second train() the sparsity is {sparsity:.3f}, not 0.5")
    return ""


TRAINER_CASES = in_area(
    "trainer/callback",
    [
        Case("pruning='rpp' (a name)", lambda: _trainer_with("rpp"), ("'rpp'",)),
        Case("pruning={'method': 'rpp'} (a dict)", lambda: _trainer_with({"method": "rpp"}), ("method",)),
        Case("PruningCallback('magnitude')", lambda: PruningCallback("magnitude"), ("'magnitude'",)),
        Case(
            "include pattern that matches nothing",
            lambda: _trainer_with(RPPConfig(include=["no_such_layer"])),
            ("no_such_layer",),
        ),
        Case(
            "exclude pattern that matches nothing", lambda: _trainer_with(RPPConfig(exclude=["decoder"])), ("decoder",)
        ),
        Case("include pattern that is not a regex", lambda: _trainer_with(RPPConfig(include=["query["])), ("query[",)),
        Case("exclude everything", lambda: _trainer_with(RPPConfig(exclude=[".*"])), ("exclude",)),
        Case(
            "include/exclude through the stock Trainer + callback",
            lambda: _stock_trainer_with_callback(RPPConfig(include=["no_such_layer"])),
            ("no_such_layer",),
        ),
        Case("one method object given to two Trainers", _method_reused_for_two_models, ("different model",)),
        Case("pruning function returning a name", _trial_function_returning_a_name, ("'rpp'", "pruning config")),
        Case("stock Trainer + model_init + rank callback", _stock_model_init_rank, ("optimizer", "PruningTrainer")),
        Case("save_pruned on a trainer without pruning", _save_pruned_without_pruning, ("no pruning",)),
        Case(
            "evaluate() before train() then save_pruned (must warn)",
            _evaluate_then_save_pruned,
            ("before any training", "evaluate"),
        ),
        Case("save_pruned before train() (must warn)", _save_pruned_before_train, ("before any training",)),
        Case(
            "trainer.save_pruned format='zip'", lambda: _trainer_export(MagnitudeConfig(**MAGNITUDE), "zip"), ("zip",)
        ),
        Case(
            "trainer.save_pruned magnitude as factored",
            lambda: _trainer_export(MagnitudeConfig(**MAGNITUDE), "factored"),
            ("factored", "magnitude"),
        ),
        Case(
            "trainer.save_pruned rank as compact",
            lambda: _trainer_export(RankConfig(**RANK), "compact"),
            ("compact", "rank"),
        ),
        Case("valid edge: schedule longer than the run", _schedule_longer_than_run, valid=True),
        Case("valid edge: gradient accumulation", _gradient_accumulation, valid=True),
        Case("valid edge: include patterns as a tuple", _include_tuple_trainer, valid=True),
        Case("valid edge: PruningTrainer + model_init + rank", _pruning_trainer_model_init_rank, valid=True),
        Case("valid edge: stock Trainer + callback, then save_pruned", _stock_trainer_and_callback_export, valid=True),
        Case("valid edge: train() twice on one trainer", _train_twice, valid=True),
    ],
)


# =========================================================================== recipe cases
def _recipe_model_missing() -> None:
    load_recipe(model=os.path.join(FX.tmp("m"), "no_such_model"))


def _recipe_model_is_relative_missing() -> None:
    load_recipe(model="./models/no_such_local_model")


def _recipe_output_dir_user_folder() -> None:
    folder = user_folder()
    keeping(folder, lambda: load_recipe(output_dir=folder))


def _recipe_output_dir_file() -> None:
    load_recipe(output_dir=a_file())


def _recipe_output_dir_under_file() -> None:
    load_recipe(output_dir=os.path.join(a_file(), "export"))


def _recipe_missing_file() -> None:
    Recipe.from_yaml(os.path.join(FX.tmp("r"), "no_such_recipe.yaml"))


def _recipe_ok() -> str:
    recipe = Recipe.from_yaml(recipe_file())
    recipe.pruning_config()
    return ""


def _recipe_ok_rank_factored() -> str:
    Recipe.from_yaml(recipe_file(pruning={"method": "rank", "target_params_fraction": 0.5}, export_format="factored"))
    return ""


def _recipe_ok_output_dir_previous_export() -> str:
    Recipe.from_yaml(recipe_file(output_dir=FX.fresh(FX.export("dense"))))
    return ""


RECIPE_CASES = in_area(
    "recipe",
    [
        Case("local model path that does not exist", _recipe_model_missing, ("no_such_model",)),
        Case(
            "relative local model path that does not exist", _recipe_model_is_relative_missing, ("no_such_local_model",)
        ),
        Case("unknown recipe key 'epochs'", lambda: load_recipe(epochs=3), ("epochs",)),
        Case("missing required key 'pruning'", lambda: load_recipe(pruning=None), ("pruning",)),
        Case("unknown task 'movie'", lambda: load_recipe(task="movie"), ("'movie'", "movie_sentiment")),
        Case("pruning: rpp (a string)", lambda: load_recipe(pruning="rpp"), ("pruning", "rpp")),
        Case("pruning method 'rp'", lambda: load_recipe(pruning={"method": "rp"}), ("'rp'",)),
        Case(
            "pruning without 'method'",
            lambda: load_recipe(text=recipe_text().replace("method: magnitude", "kind: magnitude")),
            ("method",),
        ),
        Case("pruning typo targt_sparsity", lambda: load_recipe(pruning={"targt_sparsity": 0.9}), ("targt_sparsity",)),
        Case(
            "pruning target_sparsity: 1.5",
            lambda: load_recipe(pruning={"target_sparsity": 1.5}),
            ("target_sparsity", "1.5"),
        ),
        Case(
            "export_format factored for magnitude",
            lambda: load_recipe(export_format="factored"),
            ("factored", "magnitude"),
        ),
        Case(
            "export_format compact for rank",
            lambda: load_recipe(pruning={"method": "rank", "target_params_fraction": 0.5}, export_format="compact"),
            ("compact", "rank"),
        ),
        Case("export_format 'zip'", lambda: load_recipe(export_format="zip"), ("zip",)),
        Case("training.max_steps: -5", lambda: load_recipe(training={"max_steps": -5}), ("max_steps", "-5")),
        Case("training.max_steps: 0", lambda: load_recipe(training={"max_steps": 0}), ("max_steps",)),
        Case(
            "training.learning_rate: abc",
            lambda: load_recipe(training={"learning_rate": "abc"}),
            ("learning_rate", "abc"),
        ),
        Case(
            "training.learning_rate: -1", lambda: load_recipe(training={"learning_rate": -1.0}), ("learning_rate", "-1")
        ),
        Case("training.lerning_rate (typo)", lambda: load_recipe(training={"lerning_rate": 1e-4}), ("lerning_rate",)),
        Case(
            "training.per_device_train_batch_size: 0",
            lambda: load_recipe(training={"per_device_train_batch_size": 0}),
            ("per_device_train_batch_size",),
        ),
        # Valid on purpose: PyYAML reads 5e-5 as a string, so a number spelled as text in a number
        # field is read as that number (hf_prune/recipe_checks.py).
        Case(
            "training.per_device_train_batch_size: '32'",
            lambda: load_recipe(training={"per_device_train_batch_size": "32"}),
            valid=True,
        ),
        Case("training.output_dir given", lambda: load_recipe(training={"output_dir": "elsewhere"}), ("output_dir",)),
        Case("training: a list", lambda: load_recipe(training=["max_steps", 4]), ("training",)),
        Case("max_length: abc", lambda: load_recipe(max_length="abc"), ("max_length", "abc")),
        Case("max_length: -1", lambda: load_recipe(max_length=-1), ("max_length", "-1")),
        Case("dense_baseline: 'yes'", lambda: load_recipe(dense_baseline="yes please"), ("dense_baseline",)),
        Case(
            "baseline_files: a string, not a list",
            lambda: load_recipe(baseline_files="dense.json"),
            ("baseline_files",),
        ),
        Case("output_dir: a user's folder", _recipe_output_dir_user_folder, ("my_project",)),
        Case("output_dir: a file", _recipe_output_dir_file, ("a_file.txt",)),
        Case("output_dir: under a file", _recipe_output_dir_under_file, ("a_file.txt",)),
        Case("recipe that is a YAML list", lambda: load_recipe(text="- model: x\n- task: y\n"), ("list",)),
        Case("recipe that is a YAML scalar", lambda: load_recipe(text="just some words\n"), ("recipe",)),
        Case("empty recipe file", lambda: load_recipe(text=""), ("model", "task", "pruning")),
        Case("malformed YAML", lambda: load_recipe(text="model: [unclosed\ntask: x\n"), ("recipe.yaml",)),
        Case("tab-indented YAML", lambda: load_recipe(text="pruning:\n\tmethod: rpp\n"), ("recipe.yaml",)),
        Case("recipe file that does not exist", _recipe_missing_file, ("no_such_recipe.yaml",)),
        Case("valid edge: minimal tiny recipe", _recipe_ok, valid=True),
        Case("valid edge: rank + factored", _recipe_ok_rank_factored, valid=True),
        Case("valid edge: output_dir is a previous export", _recipe_ok_output_dir_previous_export, valid=True),
    ],
)


# =========================================================================== CLI cases
def _cli_train(text: str | None = None, *extra: str, **changes: Any) -> CliRun:
    return cli("train", recipe_file(text, **changes), *extra)


def _cli_output_dir_user_folder() -> CliRun:
    folder = user_folder()
    return keeping(folder, lambda: _cli_train(None, "--output-dir", folder))


def _cli_report_non_export() -> CliRun:
    return cli("report", user_folder())


def _cli_report_truncated() -> CliRun:
    folder = FX.fresh(FX.export("dense"))
    damage(os.path.join(folder, "model.safetensors"), "truncated")
    return cli("report", folder)


def _cli_report_flipped_compact() -> CliRun:
    folder = FX.fresh(FX.export("compact"))
    damage(os.path.join(folder, "model.compact.safetensors"), "flipped")
    return cli("report", folder)


def _cli_report_checkpoint() -> CliRun:
    return cli("report", FX.checkpoint("movement"))


def _cli_report_ok() -> CliRun:
    return cli("report", FX.export("factored"))


def _cli_subprocess_malformed_yaml() -> CliRun:
    return cli_subprocess("train", recipe_file(text="model: [unclosed\ntask: x\n"))


def _cli_subprocess_report_truncated() -> CliRun:
    folder = FX.fresh(FX.export("compact"))
    damage(os.path.join(folder, "model.compact.safetensors"), "truncated")
    return cli_subprocess("report", folder)


CLI_CASES = in_area(
    "CLI",
    [
        Case("train: malformed YAML", lambda: _cli_train("model: [unclosed\ntask: x\n"), ("recipe.yaml",)),
        Case(
            "train: --set a.b=1 into a string (model.revision)",
            lambda: _cli_train(None, "--set", "model.revision=main"),
            ("model",),
        ),
        Case(
            "train: --set value that does not parse",
            lambda: _cli_train(None, "--set", "pruning.target_sparsity=[0.5"),
            ("pruning.target_sparsity",),
        ),
        Case(
            "train: --set without '='",
            lambda: _cli_train(None, "--set", "pruning.target_sparsity"),
            ("pruning.target_sparsity",),
        ),
        Case("train: --set unknown key a.b=1", lambda: _cli_train(None, "--set", "a.b=1"), ("'a'",)),
        Case(
            "train: --set pruning.target_sparsity=1.5",
            lambda: _cli_train(None, "--set", "pruning.target_sparsity=1.5"),
            ("target_sparsity", "1.5"),
        ),
        Case("train: max_length: abc", lambda: _cli_train(max_length="abc"), ("max_length", "abc")),
        Case(
            "train: learning_rate: abc", lambda: _cli_train(training={"learning_rate": "abc"}), ("learning_rate", "abc")
        ),
        Case("train: pruning: rpp", lambda: _cli_train(pruning="rpp"), ("pruning", "rpp")),
        Case("train: recipe that is a YAML list", lambda: _cli_train("- model: x\n- task: y\n"), ("list",)),
        Case("train: training.max_steps: -5", lambda: _cli_train(training={"max_steps": -5}), ("max_steps", "-5")),
        Case(
            "train: magnitude + factored export",
            lambda: _cli_train(export_format="factored"),
            ("factored", "magnitude"),
        ),
        Case("train: --output-dir is a user's folder", _cli_output_dir_user_folder, ("my_project",)),
        Case(
            "train: missing local model path", lambda: _cli_train(model="./no_such_model_dir"), ("no_such_model_dir",)
        ),
        Case(
            "train: recipe file that does not exist",
            lambda: cli("train", os.path.join(FX.tmp("r"), "missing.yaml")),
            ("missing.yaml",),
        ),
        Case("train: no recipe argument", lambda: cli("train"), ("recipe",)),
        Case("unknown command 'prune'", lambda: cli("prune", "x.yaml"), ("prune",)),
        Case("report: a folder that is not an export", _cli_report_non_export, ("my_project",)),
        Case("report: a truncated export", _cli_report_truncated, ("model.safetensors", "truncated")),
        Case("report: a bit-flipped compact export", _cli_report_flipped_compact, ("model.compact.safetensors",)),
        Case(
            "report: a folder that does not exist", lambda: cli("report", os.path.join(FX.tmp("r"), "gone")), ("gone",)
        ),
        Case("report: a movement Trainer checkpoint", _cli_report_checkpoint, ("checkpoint",)),
        Case("subprocess train: malformed YAML", _cli_subprocess_malformed_yaml, ("recipe.yaml",)),
        Case(
            "subprocess report: a truncated compact export",
            _cli_subprocess_report_truncated,
            ("model.compact.safetensors",),
        ),
        Case("valid edge: report on a factored export", _cli_report_ok, valid=True),
        Case("valid edge: methods", lambda: cli("methods"), valid=True),
        Case("valid edge: formats --markdown", lambda: cli("formats", "--markdown"), valid=True),
    ],
)


# =========================================================================== export cases
def _export(fmt: str = "dense", method_name: str = "magnitude", path: str | None = None, **kwargs: Any):
    model, method = pruned(method_name)
    target = path if path is not None else os.path.join(FX.tmp("out"), "out")
    return save_pruned(model, target, method, format=fmt, **kwargs), target


def _export_into_trainer_output_dir() -> None:
    trainer = FX.trainer(MagnitudeConfig(**MAGNITUDE), save_strategy="steps", save_steps=2)
    trainer.train()
    folder = str(trainer.args.output_dir)
    keeping(folder, lambda: trainer.save_pruned(folder))


def _export_into_trainer_output_dir_function() -> None:
    trainer = FX.trainer(MagnitudeConfig(**MAGNITUDE), save_strategy="steps", save_steps=2)
    trainer.train()
    folder = str(trainer.args.output_dir)
    keeping(folder, lambda: save_pruned(trainer.model, folder, trainer.pruning_method))


def _export_into_user_folder(with_report: bool) -> None:
    folder = user_folder(with_report)
    model, method = pruned("magnitude")
    keeping(folder, lambda: save_pruned(model, folder, method))


def _export_twice() -> str:
    _, path = _export("dense")
    _export("dense", path=path)
    _export("compact", path=path)
    load_pruned(path)
    return ""


def _re_export_keeps_user_file() -> str:
    _, path = _export("dense")
    write(os.path.join(path, "NOTES.md"), "mine")
    _export("compact", path=path)
    if not os.path.isfile(os.path.join(path, "NOTES.md")):
        raise Wrong("the user's NOTES.md added to an export was deleted by a re-export")
    return ""


def _export_permissions(fmt: str, method_name: str) -> str:
    old = os.umask(0o022)
    try:
        _, path = _export(fmt, method_name)
    finally:
        os.umask(old)
    bad = {}
    for name in os.listdir(path):
        mode = stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode)
        if mode & 0o044 != 0o044:
            bad[name] = oct(mode)
    folder_mode = stat.S_IMODE(os.stat(path).st_mode)
    if folder_mode & 0o055 != 0o055:
        bad["<folder>"] = oct(folder_mode)
    if bad:
        raise Wrong(f"not readable by group/others under umask 022: {bad}")
    return ""


def _export_unattached_method() -> None:
    save_pruned(tiny_bert(), os.path.join(FX.tmp("out"), "out"), create_method(MagnitudeConfig()))


def _export_with_method_of_another_model() -> None:
    _, method = pruned("magnitude")
    other = tiny_bert(seed=1)
    report = save_pruned(other, os.path.join(FX.tmp("out"), "out"), method)
    raise Wrong(f"exported a model the method was never attached to (saved sparsity {report['saved_sparsity']:.3f})")


def _export_method_name_string() -> None:
    save_pruned(tiny_bert(), os.path.join(FX.tmp("out"), "out"), "magnitude")


def _export_into_empty_folder() -> str:
    path = os.path.join(FX.tmp("out"), "empty")
    os.makedirs(path)
    _export(path=path)
    return ""


def _export_pathlib() -> str:
    import pathlib

    _export(path=pathlib.Path(FX.tmp("out")) / "out")
    return ""


def _export_rank_dense() -> str:
    _export("dense", "rank")
    return ""


def _save_to(path: Any) -> None:
    model, method = pruned("magnitude")
    save_pruned(model, path, method)


def _export_into_missing_parents() -> str:
    _export(path=os.path.join(FX.tmp("out"), "a", "b", "c"))
    return ""


EXPORT_CASES = in_area(
    "export",
    [
        Case("save_pruned(model, None, method)", lambda: _save_to(None), ("None",)),
        Case("save_pruned into '' (empty path)", lambda: _save_to(""), ("''",)),
        Case(
            "save_pruned into a path under a file", lambda: _export(path=os.path.join(a_file(), "out")), ("a_file.txt",)
        ),
        Case("save_pruned into a file", lambda: _export(path=a_file()), ("a_file.txt",)),
        Case("trainer.save_pruned into the Trainer's output_dir", _export_into_trainer_output_dir, ("output_dir",)),
        Case(
            "save_pruned() into the Trainer's output_dir",
            _export_into_trainer_output_dir_function,
            ("not an hf_prune export",),
        ),
        Case(
            "save_pruned into a folder with a stray pruning_report.json + notes",
            lambda: _export_into_user_folder(True),
            ("my_project", "not an hf_prune export"),
        ),
        Case("save_pruned into a user's folder with notes", lambda: _export_into_user_folder(False), ("my_project",)),
        Case("save_pruned format='zip'", lambda: _export("zip"), ("zip",)),
        Case("save_pruned format=None", lambda: _export(None), ("None",)),
        Case("save_pruned magnitude as factored", lambda: _export("factored"), ("factored", "magnitude")),
        Case("save_pruned rank as compact", lambda: _export("compact", "rank"), ("compact", "rank")),
        Case("save_pruned with a method never attached", _export_unattached_method, ("attach",)),
        Case(
            "save_pruned with a method attached to another model", _export_with_method_of_another_model, ("attached",)
        ),
        Case("save_pruned with a method name instead of a method", _export_method_name_string, ("'magnitude'",)),
        Case("valid edge: export twice into the same folder (dense, dense, compact)", _export_twice, valid=True),
        Case("valid edge: re-export keeps a user's file", _re_export_keeps_user_file, valid=True),
        Case(
            "valid edge: dense weights readable under umask 022",
            lambda: _export_permissions("dense", "magnitude"),
            valid=True,
        ),
        Case(
            "valid edge: compact files readable under umask 022",
            lambda: _export_permissions("compact", "magnitude"),
            valid=True,
        ),
        Case(
            "valid edge: factored files readable under umask 022",
            lambda: _export_permissions("factored", "rank"),
            valid=True,
        ),
        Case("valid edge: export into an existing empty folder", _export_into_empty_folder, valid=True),
        Case("valid edge: export path as pathlib.Path", _export_pathlib, valid=True),
        Case("valid edge: rank exported dense", _export_rank_dense, valid=True),
        Case("valid edge: export into missing parent folders", _export_into_missing_parents, valid=True),
    ],
)


# =========================================================================== load cases
def _damaged_export(fmt: str, file_name: str, how: str) -> None:
    folder = FX.fresh(FX.export(fmt))
    damage(os.path.join(folder, file_name), how)
    _load_must_fail(folder)


def _load_must_fail(folder: str) -> None:
    model = load_pruned(folder)
    raise Wrong(f"a damaged export loaded as {type(model).__name__}")


def _dense_value_flipped() -> None:
    folder = FX.fresh(FX.export("dense"))
    flip_value(os.path.join(folder, "model.safetensors"))
    _load_must_fail(folder)


def _export_file_removed(fmt: str, name: str) -> None:
    folder = FX.fresh(FX.export(fmt))
    os.remove(os.path.join(folder, name))
    _load_must_fail(folder)


def _manifest_edit(fmt: str, change: Callable[[dict], Any]) -> None:
    folder = FX.fresh(FX.export(fmt))
    edit_json(os.path.join(folder, "hf_prune_export.json"), change)
    _load_must_fail(folder)


def _manifest_garbled() -> None:
    folder = FX.fresh(FX.export("compact"))
    write(os.path.join(folder, "hf_prune_export.json"), "{garbled")
    _load_must_fail(folder)


def _hf_prune_config_newer() -> None:
    folder = FX.fresh(FX.export("dense"))
    edit_json(os.path.join(folder, "hf_prune_config.json"), lambda d: {**d, "hf_prune_config_version": 99})
    PruningConfig.load(folder)


def _load_plain_folder() -> str:
    folder = os.path.join(FX.tmp("plain"), "plain")
    tiny_bert().save_pretrained(folder)
    load_pruned(folder)
    return ""


def _load_ok(fmt: str) -> str:
    model = load_pruned(FX.export(fmt))
    if model.training:
        raise Wrong("load_pruned returned a model in training mode")
    return ""


def _load_rpp_checkpoint() -> str:
    load_pruned(FX.checkpoint("rpp"))
    return "an element-wise checkpoint holds plain weights; it loads as a model"


def _read_report_non_export() -> None:
    read_report(user_folder())


def _load_empty_folder() -> None:
    load_pruned(FX.tmp("empty"))


LOAD_CASES = in_area(
    "load",
    [
        Case("load_pruned('no_such_folder')", lambda: load_pruned("no_such_folder"), ("no_such_folder",)),
        Case("load_pruned('./missing/export')", lambda: load_pruned("./missing/export"), ("./missing/export",)),
        Case(
            "load_pruned('owner/name/sub') not a folder",
            lambda: load_pruned("someone/some-model/extra"),
            ("someone/some-model/extra",),
        ),
        Case("load_pruned(None)", lambda: load_pruned(None), ("None",)),
        Case("load_pruned on an empty folder", _load_empty_folder, ("config.json",)),
        Case("load_pruned on a user's folder", lambda: _load_must_fail(user_folder()), ("my_project",)),
        Case(
            "load_pruned on a movement Trainer checkpoint",
            lambda: load_pruned(FX.checkpoint("movement")),
            ("checkpoint", "save_pruned"),
        ),
        Case(
            "load_pruned on a rank Trainer checkpoint",
            lambda: load_pruned(FX.checkpoint("rank")),
            ("checkpoint", "save_pruned"),
        ),
        Case("dense export: one value changed (same size)", _dense_value_flipped, ("model.safetensors",)),
        Case(
            "dense export: bit-flipped",
            lambda: _damaged_export("dense", "model.safetensors", "flipped"),
            ("model.safetensors",),
        ),
        Case(
            "dense export: truncated",
            lambda: _damaged_export("dense", "model.safetensors", "truncated"),
            ("model.safetensors",),
        ),
        Case(
            "dense export: empty weights file",
            lambda: _damaged_export("dense", "model.safetensors", "empty"),
            ("model.safetensors",),
        ),
        Case(
            "compact export: bit-flipped",
            lambda: _damaged_export("compact", "model.compact.safetensors", "flipped"),
            ("model.compact.safetensors",),
        ),
        Case(
            "compact export: truncated",
            lambda: _damaged_export("compact", "model.compact.safetensors", "truncated"),
            ("model.compact.safetensors",),
        ),
        Case(
            "compact export: garbled header",
            lambda: _damaged_export("compact", "model.compact.safetensors", "garbled"),
            ("model.compact.safetensors",),
        ),
        Case(
            "factored export: bit-flipped",
            lambda: _damaged_export("factored", "model.factored.safetensors", "flipped"),
            ("model.factored.safetensors",),
        ),
        Case(
            "factored export: truncated",
            lambda: _damaged_export("factored", "model.factored.safetensors", "truncated"),
            ("model.factored.safetensors",),
        ),
        Case(
            "dense export: weights file missing",
            lambda: _export_file_removed("dense", "model.safetensors"),
            ("model.safetensors",),
        ),
        Case(
            "compact export: manifest missing",
            lambda: _export_file_removed("compact", "hf_prune_export.json"),
            ("hf_prune_export.json",),
        ),
        Case(
            "compact export: config.json missing",
            lambda: _export_file_removed("compact", "config.json"),
            ("config.json",),
        ),
        Case("compact export: manifest garbled", _manifest_garbled, ("hf_prune_export.json",)),
        Case(
            "dense export: manifest from a newer hf_prune",
            lambda: _manifest_edit("dense", lambda m: {**m, "hf_prune_export_version": 99}),
            ("99", "upgrade"),
        ),
        Case(
            "compact export: manifest names format 'zip'",
            lambda: _manifest_edit("compact", lambda m: {**m, "format": "zip"}),
            ("'zip'",),
        ),
        Case(
            "compact export: model class that cannot be imported",
            lambda: _manifest_edit(
                "compact", lambda m: {**m, "model_class": "NoSuchModel", "model_module": "no_such_module"}
            ),
            ("NoSuchModel", "no_such_module"),
        ),
        Case("export: hf_prune_config.json from a newer hf_prune", _hf_prune_config_newer, ("99", "upgrade")),
        Case("read_report on a folder that is not an export", _read_report_non_export, ("pruning_report.json",)),
        Case("valid edge: load a plain save_pretrained folder", _load_plain_folder, valid=True),
        Case("valid edge: load a dense export", lambda: _load_ok("dense"), valid=True),
        Case("valid edge: load a compact export", lambda: _load_ok("compact"), valid=True),
        Case("valid edge: load a factored export", lambda: _load_ok("factored"), valid=True),
        Case("valid edge: load an RPP (element-wise) Trainer checkpoint", _load_rpp_checkpoint, valid=True),
    ],
)


# =========================================================================== checkpoint / resume cases
def _resume(checkpoint: str, config: PruningConfig, stock: bool = False) -> str:
    out = FX.tmp("resume")
    if stock:
        callback = PruningCallback(config, resume_from_checkpoint=checkpoint)
        trainer: Trainer = Trainer(model=tiny_bert(), args=args(out), train_dataset=FX.dataset, callbacks=[callback])
    else:
        trainer = FX.trainer(config, out)
    trainer.train(resume_from_checkpoint=checkpoint)
    return ""


def _resume_damaged(how: str, method: str = "rpp") -> None:
    folder = FX.fresh(FX.checkpoint(method))
    damage(os.path.join(folder, STATE_FILE_NAME), how)
    _resume(folder, CONFIGS[method]())
    raise Wrong(f"resumed from a {how} state file")


def _load_state_damaged(how: str) -> None:
    folder = FX.fresh(FX.checkpoint("rpp"))
    damage(os.path.join(folder, STATE_FILE_NAME), how)
    method = create_method(CONFIGS["rpp"]())
    method.attach(tiny_bert())
    load_method_state(method, folder)
    raise Wrong(f"loaded a {how} state file")


def _resume_state_missing() -> None:
    folder = FX.fresh(FX.checkpoint("magnitude"))
    os.remove(os.path.join(folder, STATE_FILE_NAME))
    _resume(folder, CONFIGS["magnitude"]())


def _resume_state_newer() -> None:
    folder = FX.fresh(FX.checkpoint("magnitude"))
    path = os.path.join(folder, STATE_FILE_NAME)
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, path, metadata={**metadata, "hf_prune_state_version": "99"})
    _resume(folder, CONFIGS["magnitude"]())


def _resume_true_without_checkpoints() -> None:
    trainer = FX.trainer(MagnitudeConfig(**MAGNITUDE))
    trainer.train(resume_from_checkpoint=True)


def _resume_missing_folder() -> None:
    _resume(os.path.join(FX.tmp("r"), "checkpoint-404"), CONFIGS["magnitude"]())


RESUME_CASES = in_area(
    "checkpoint/resume",
    [
        Case(
            "resume rank checkpoint with magnitude",
            lambda: _resume(FX.checkpoint("rank"), MagnitudeConfig(**MAGNITUDE)),
            ("'rank'", "'magnitude'"),
        ),
        Case(
            "resume magnitude checkpoint with rank",
            lambda: _resume(FX.checkpoint("magnitude"), RankConfig(**RANK)),
            ("'magnitude'", "'rank'"),
        ),
        Case(
            "resume rpp checkpoint with movement",
            lambda: _resume(FX.checkpoint("rpp"), MovementConfig(**MOVEMENT)),
            ("'rpp'", "'movement'"),
        ),
        Case(
            "resume with a different target_sparsity",
            lambda: _resume(FX.checkpoint("magnitude"), MagnitudeConfig(**{**MAGNITUDE, "target_sparsity": 0.7})),
            ("target_sparsity", "0.5", "0.7"),
        ),
        Case(
            "resume rank with a different target_params_fraction",
            lambda: _resume(FX.checkpoint("rank"), RankConfig(**{**RANK, "target_params_fraction": 0.3})),
            ("target_params_fraction",),
        ),
        Case(
            "resume with different include patterns",
            lambda: _resume(FX.checkpoint("magnitude"), MagnitudeConfig(**MAGNITUDE, include=["query"])),
            ("include",),
        ),
        Case(
            "stock Trainer + callback resume with a different target",
            lambda: _resume(
                FX.checkpoint("magnitude"), MagnitudeConfig(**{**MAGNITUDE, "target_sparsity": 0.7}), stock=True
            ),
            ("target_sparsity",),
        ),
        Case("resume: state file empty", lambda: _resume_damaged("empty"), (STATE_FILE_NAME,)),
        Case("resume: state file truncated", lambda: _resume_damaged("truncated"), (STATE_FILE_NAME,)),
        Case("resume: state file garbled", lambda: _resume_damaged("garbled"), (STATE_FILE_NAME,)),
        Case(
            "resume: state file bit-flipped (data)", lambda: _resume_damaged("flipped"), (STATE_FILE_NAME, "corrupted")
        ),
        Case("resume: state file header byte changed", lambda: _resume_damaged("header-flipped"), (STATE_FILE_NAME,)),
        Case("resume rank: state file bit-flipped", lambda: _resume_damaged("flipped", "rank"), (STATE_FILE_NAME,)),
        Case("load_method_state: truncated", lambda: _load_state_damaged("truncated"), (STATE_FILE_NAME,)),
        Case("load_method_state: bit-flipped", lambda: _load_state_damaged("flipped"), (STATE_FILE_NAME, "corrupted")),
        Case("resume: checkpoint without pruning state", _resume_state_missing, (STATE_FILE_NAME,)),
        Case(
            "resume: plain Trainer checkpoint",
            lambda: _resume(FX.plain_checkpoint(), CONFIGS["magnitude"]()),
            (STATE_FILE_NAME,),
        ),
        Case("resume: state file from a newer hf_prune", _resume_state_newer, ("99", "upgrade")),
        Case("resume: folder that does not exist", _resume_missing_folder, ("checkpoint-404",)),
        Case("resume_from_checkpoint=True without checkpoints", _resume_true_without_checkpoints, ("checkpoint",)),
        Case(
            "valid edge: resume with the same config",
            lambda: _resume(FX.checkpoint("magnitude"), MagnitudeConfig(**MAGNITUDE)),
            valid=True,
        ),
        Case(
            "valid edge: resume rank with the same config",
            lambda: _resume(FX.checkpoint("rank"), RankConfig(**RANK)),
            valid=True,
        ),
        Case(
            "valid edge: stock Trainer + callback resume",
            lambda: _resume(FX.checkpoint("magnitude"), MagnitudeConfig(**MAGNITUDE), stock=True),
            valid=True,
        ),
    ],
)


# =========================================================================== model / target cases
def _t5():
    from transformers import T5Config, T5ForConditionalGeneration

    return T5ForConditionalGeneration(
        T5Config(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, vocab_size=50)
    )


def _t5_encoder_only() -> str:
    model = _t5()
    method = create_method(MagnitudeConfig(target_sparsity=0.5))
    method.attach(model)
    names = list(method.targets)
    decoder = [n for n in names if not n.startswith("encoder.")]
    if not names or decoder:
        raise Wrong(f"T5 targets outside the encoder: {decoder[:3]} (of {len(names)})")
    return f"{len(names)} encoder targets"


def _gpt2() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0))
    create_method(MagnitudeConfig()).attach(model)


def _gpt2_trainer() -> None:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    model = GPT2ForSequenceClassification(
        GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    )
    FX.trainer(RPPConfig(), model=model)


def _plain_module() -> None:
    create_method(MagnitudeConfig()).attach(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))


def _heads_not_targets(build: Callable[[], nn.Module], forbidden: str) -> str:
    names = list(find_targets(build()))
    bad = [n for n in names if re.search(forbidden, n)]
    if not names or bad:
        raise Wrong(f"heads/poolers/embeddings among targets: {bad}")
    return ""


def _electra():
    from transformers import ElectraConfig, ElectraForSequenceClassification

    return ElectraForSequenceClassification(ElectraConfig(**_BERT, embedding_size=16))


def _distilbert_embeddings() -> str:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    )
    names = list(find_targets(model, include_embeddings=True))
    if not any("word_embeddings" in n for n in names):
        raise Wrong(f"include_embeddings=True did not add the word embedding: {names[:3]}")
    return ""


def _rank_attach_twice() -> None:
    model = tiny_bert()
    create_method(RankConfig(**RANK)).attach(model)
    create_method(RankConfig(**RANK)).attach(model)


def _find_targets_tuple() -> str:
    names = list(find_targets(tiny_bert(), include=("query",)))
    if not names or not all("query" in n for n in names):
        raise Wrong(f"include=('query',) selected {names}")
    return ""


MODEL_CASES = in_area(
    "model/targets",
    [
        Case("T5: only the encoder is a target", _t5_encoder_only, valid=True),
        Case("GPT-2 (Conv1D) refused", _gpt2, ("Conv1D",)),
        Case("GPT-2 classifier given to PruningTrainer", _gpt2_trainer, ("Conv1D",)),
        Case("plain nn.Sequential", _plain_module, ("base_model",)),
        Case(
            "find_targets include matches nothing", lambda: find_targets(tiny_bert(), include=["no_such"]), ("no_such",)
        ),
        Case("find_targets invalid regex", lambda: find_targets(tiny_bert(), exclude=["(unclosed"]), ("(unclosed",)),
        Case("find_targets include=a string", lambda: find_targets(tiny_bert(), include="query"), ("include",)),
        Case("rank attached twice to one model", _rank_attach_twice, ("already parametrized",)),
        Case(
            "valid edge: BERT classifier/pooler not targets",
            lambda: _heads_not_targets(tiny_bert, r"classifier|pooler|embeddings"),
            valid=True,
        ),
        Case(
            "valid edge: ELECTRA embeddings_project not a target",
            lambda: _heads_not_targets(_electra, r"embeddings|classifier"),
            valid=True,
        ),
        Case(
            "valid edge: bare BertModel",
            lambda: _heads_not_targets(lambda: BertModel(BertConfig(**_BERT)), r"pooler|embeddings"),
            valid=True,
        ),
        Case("valid edge: DistilBERT include_embeddings", _distilbert_embeddings, valid=True),
        Case("valid edge: find_targets include as a tuple", _find_targets_tuple, valid=True),
    ],
)


# =========================================================================== plain-loop cases
def _rank_loop(optimizer_first: bool, steps: int = 4) -> str:
    """The README's plain loop with rank pruning; the optimizer built before or after attach."""
    model = tiny_bert()
    method = create_method(RankConfig(**RANK))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3) if optimizer_first else None
    method.attach(model)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    method.begin(4)
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        optimizer.step()
        method.step(step, optimizer)
    return ""


def _rank_loop_optimizer_first() -> None:
    _rank_loop(optimizer_first=True, steps=1)
    raise Wrong(
        "the first method.step(step, optimizer) accepted an optimizer built before attach, which does not hold "
        "the factors rank pruning added (they would never train)"
    )


def _step_before_attach() -> None:
    method = create_method(MagnitudeConfig(**MAGNITUDE))
    method.begin(4)
    method.step(1)
    method.step(4)


def _step_without_begin(name: str) -> None:
    model = tiny_bert()
    method = create_method(CONFIGS[name]() if name != "magnitude-fractions" else MagnitudeConfig(target_sparsity=0.5))
    method.attach(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(1, 4):
        optimizer.zero_grad()
        batch_loss(model, step).backward()
        optimizer.step()
        method.step(step, optimizer)


def _finalize_before_attach() -> None:
    create_method(MagnitudeConfig()).finalize()


def _begin(total: Any) -> None:
    method = create_method(MagnitudeConfig(target_sparsity=0.5))
    method.attach(tiny_bert())
    method.begin(total)
    method.step(1)


def _movement_loop() -> str:
    model, method = pruned("movement")
    sparsity = method.sparsity()
    if abs(sparsity - 0.5) > 0.01:
        raise Wrong(f"movement in a plain loop ended at sparsity {sparsity:.3f}")
    return ""


def _rpp_loop_then_export() -> str:
    model, method = pruned("rpp")
    save_pruned(model, os.path.join(FX.tmp("out"), "out"), method, format="compact")
    return ""


LOOP_CASES = in_area(
    "plain loop",
    [
        Case("rank: optimizer built BEFORE attach, first step", _rank_loop_optimizer_first, ("optimizer", "attach")),
        Case("step() before attach()", _step_before_attach, ("attach",)),
        Case(
            "magnitude step() without begin() (fractions)",
            lambda: _step_without_begin("magnitude-fractions"),
            ("begin",),
        ),
        Case("rpp step() without begin()", lambda: _step_without_begin("rpp"), ("begin",)),
        Case("movement step() without begin()", lambda: _step_without_begin("movement"), ("begin",)),
        Case("finalize() before attach()", _finalize_before_attach, ("attach",)),
        Case("begin(-5)", lambda: _begin(-5), ("total_steps", "-5")),
        Case("begin('100') (a string)", lambda: _begin("100"), ("total_steps", "'100'")),
        Case(
            "valid edge: rank with the optimizer built after attach",
            lambda: _rank_loop(optimizer_first=False),
            valid=True,
        ),
        Case("valid edge: movement in a plain loop", _movement_loop, valid=True),
        Case("valid edge: rpp in a plain loop, then compact export", _rpp_loop_then_export, valid=True),
    ],
)

ALL_CASES = (
    CONFIG_CASES
    + TRAINER_CASES
    + RECIPE_CASES
    + CLI_CASES
    + EXPORT_CASES
    + LOAD_CASES
    + RESUME_CASES
    + MODEL_CASES
    + LOOP_CASES
)


# =========================================================================== report
def markdown(results: list[Result], info: dict[str, Any], seconds: float, dirty: list[str]) -> str:
    counts = Counter(r.classification for r in results)
    lines = [
        "# Bad-input battery",
        "",
        "hf_prune tried with bad or edge inputs as a new user would (tiny random models, offline).",
        "Rerun: `.venv/bin/python benchmarks/bad_input_battery.py`. Classes: **clear** (HfPruneError / CLI "
        "`error:` line naming the bad value), **unclear** (another exception, or a message without it), "
        "**wrong** (accepted silently, a user's file lost, damaged data loaded, a valid input refused), "
        "**ok** (a valid edge input that worked).",
        "",
        f"Code `{info['code_version']}`, torch {info['torch']}, {info['cpu_count']} CPUs, {info['platform']}, "
        f"{info['time']}, {seconds:.0f} s." + (f" Uncommitted library files: {', '.join(dirty)}." if dirty else ""),
        "",
        f"**{len(results)} cases: " + ", ".join(f"{counts.get(c, 0)} {c}" for c in CLASSES) + "**",
        "",
        "| area | cases | " + " | ".join(CLASSES) + " |",
        "|---|---|" + "---|" * len(CLASSES),
    ]
    for area in AREAS:
        rows = [r for r in results if r.area == area]
        area_counts = Counter(r.classification for r in rows)
        lines.append(f"| {area} | {len(rows)} | " + " | ".join(str(area_counts.get(c, 0)) for c in CLASSES) + " |")
    lines += ["", "## Cases that are neither clear nor ok", ""]
    bad = [r for r in results if r.classification not in ("clear", "ok")]
    if not bad:
        lines.append("None.")
    else:
        lines += ["| case | area | class | exception | message |", "|---|---|---|---|---|"]
        for r in bad:
            message = r.message.replace("|", "\\|")
            lines.append(f"| {r.name} | {r.area} | **{r.classification}** | {r.exception_type or '-'} | {message} |")
    lines.append("")
    return "\n".join(lines)


def _uncommitted_library_files() -> list[str]:
    """Files of the package that differ from the commit in ``code_version`` (the battery tests the working tree)."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--", "hf_prune"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(line[3:] for line in done.stdout.splitlines())


def main() -> int:
    global FX
    # Warnings are captured where a case checks them; keep the console to one line per case (this
    # also makes hf_prune.cli.main's own logging.basicConfig a no-op).
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    info = machine_info()
    names = [c.name for c in ALL_CASES]
    duplicates = sorted(n for n, k in Counter(names).items() if k > 1)
    if duplicates:
        raise SystemExit(f"duplicate case names: {duplicates}")
    start = time.perf_counter()
    results: list[Result] = []
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hf_prune_battery-") as root:
        FX = Fixtures(root)
        os.chdir(root)  # relative paths a case uses land in the temporary folder
        try:
            for index, case in enumerate(ALL_CASES, 1):
                result = classify(case)
                results.append(result)
                print(
                    f"[{index:3d}/{len(ALL_CASES)}] {result.classification:<7} {case.area:<17} {case.name}"
                    + (
                        f"  -- {result.exception_type}: {_short(result.message, 140)}"
                        if result.classification not in ("clear", "ok")
                        else ""
                    ),
                    flush=True,
                )
        finally:
            os.chdir(cwd)
    seconds = time.perf_counter() - start
    counts = Counter(r.classification for r in results)
    payload = {
        "machine": info,
        "uncommitted_library_files": _uncommitted_library_files(),
        "seconds": round(seconds, 1),
        "command": ".venv/bin/python benchmarks/bad_input_battery.py",
        "counts": {"cases": len(results), **{c: counts.get(c, 0) for c in CLASSES}},
        "counts_per_area": {
            area: {c: sum(1 for r in results if r.area == area and r.classification == c) for c in CLASSES}
            for area in AREAS
        },
        "cases": [
            {
                "name": r.name,
                "area": r.area,
                "classification": r.classification,
                "exception_type": r.exception_type,
                "message": r.message,
                "expected_substrings": r.expected,
            }
            for r in results
        ],
    }
    json_path = write_json("bad_input_battery.json", payload)
    md_path = write_text("bad_input_battery.md", markdown(results, info, seconds, payload["uncommitted_library_files"]))
    print(f"\n{len(results)} cases in {seconds:.0f} s: " + ", ".join(f"{counts.get(c, 0)} {c}" for c in CLASSES))
    print(f"wrote {os.path.relpath(json_path, ROOT)} and {os.path.relpath(md_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
