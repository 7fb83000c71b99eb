"""Bad-input battery: hf_prune tried as a new user would, with bad or edge inputs, each outcome classified.

Run (from the repository root; under a minute on 2 cores, offline, everything in temporary folders)::

    .venv/bin/python benchmarks/bad_input_battery.py
    .venv/bin/python benchmarks/bad_input_battery.py --area multitask   # one area, nothing written

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
plus three real ``hf-prune`` subprocesses that check the installed entry point the same way.
Areas ``tasks``, ``multitask`` and ``multitask recipe`` cover multitask pruning: named and own tasks
(``hf_prune.tasks``), the multitask model, trainer, mixture, sampler and collator, and ``tasks:`` recipes.
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

import datasets  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value  # noqa: E402
from datasets import Sequence as SequenceFeature  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
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
from hf_prune.multitask import (  # noqa: E402
    MultitaskBatchSampler,
    MultitaskCollator,
    MultitaskModel,
    MultitaskPruningTrainer,
    MultitaskTrainer,
    TaskHead,
    TaskMixture,
)
from hf_prune.recipe import Recipe  # noqa: E402
from hf_prune.tasks import Task, get_task, load_task  # noqa: E402

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
    "tasks",
    "multitask",
    "multitask recipe",
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

    def tokenizer(self) -> BertTokenizer:
        """A word-level BERT tokenizer over the tiny vocabulary (``[PAD]`` ... ``w94``)."""
        key = "tokenizer"
        if key not in self._cache:
            vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
            self._cache[key] = write(os.path.join(self.tmp(key), "vocab.txt"), "\n".join(vocab))
        return BertTokenizer(vocab_file=self._cache[key])

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


def _masks_export_of_a_moved_base_model() -> None:
    """A masks export of a model loaded from a local folder, loaded after that folder was moved."""
    base = os.path.join(FX.tmp("base"), "my-base-model")
    tiny_bert().save_pretrained(base)
    model = BertForSequenceClassification.from_pretrained(base)
    method = create_method(CONFIGS["magnitude"]())
    method.attach(model)
    method.begin(4)
    for step in range(1, 5):
        method.step(step)
    path = os.path.join(FX.tmp("out"), "masks")
    with captured_warnings():  # "applies to the local folder": the case is what happens next
        save_pruned(model, path, method, format="masks")
    shutil.move(base, base + "-moved")
    load_pruned(path)


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
        Case(
            "masks export whose local base model folder was moved",
            _masks_export_of_a_moved_base_model,
            ("masks export", "my-base-model"),
        ),
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

# =========================================================================== task cases
WORDS = ("good film", "bad plot", "fine acting", "awful ending", "great cast")
REVIEWS_CSV = "review,stars\n" + "".join(f"{WORDS[i % len(WORDS)]} {i},{i % 2}\n" for i in range(20))


def reviews(n: int = 20, **columns: Any) -> Dataset:
    """A user's own rows: ``review`` texts and ``stars`` class ids; ``columns`` replace or add columns."""
    data: dict[str, Any] = {
        "review": [f"{WORDS[i % len(WORDS)]} {i}" for i in range(n)],
        "stars": [i % 2 for i in range(n)],
    }
    data.update(columns)
    return Dataset.from_dict(data)


def _from_dataset(data: Any = None, **options: Any) -> str:
    """``Task.from_dataset`` on the reviews (text ``review``, label ``stars``, classification) with options changed."""
    options = {"text_columns": "review", "label_column": "stars", "task_type": "classification", **options}
    Task.from_dataset("my_reviews", reviews() if data is None else data, **options)
    return ""


def data_file(name: str, text: str = REVIEWS_CSV) -> str:
    return write(os.path.join(FX.tmp("data"), name), text)


def _from_files(files: Any, **options: Any) -> str:
    options = {"text_columns": ["review"], "label_column": "stars", "task_type": "classification", **options}
    Task.from_files("my_reviews", files, **options)
    return ""


def _hub_task_offline_set_late() -> None:
    """HF_HUB_OFFLINE set after huggingface_hub was imported (a notebook's ``os.environ[...] = "1"``)."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        get_task("mrpc").load()
    finally:
        constants.HF_HUB_OFFLINE = before


def _tokenize_untokenized_columns() -> None:
    task = Task.from_dataset(
        "my_reviews", reviews(), text_columns="review", label_column="stars", task_type="classification"
    )
    task.tokenize(reviews(), FX.tokenizer())  # the source rows, not task.load()


def _regression_ok() -> str:
    task = Task.from_dataset(
        "my_scores",
        reviews(stars=[i / 4 for i in range(20)]),
        text_columns="review",
        label_column="stars",
        task_type="regression",
        metrics=["spearman", "pearson"],
    )
    if task.num_labels != 1 or task.metric_names != ("spearman", "pearson"):
        raise Wrong(f"regression task built as {task.num_labels} outputs, metrics {task.metric_names}")
    return ""


def _splits_ok() -> str:
    task = Task.from_dataset(
        "my_reviews",
        DatasetDict({"train": reviews(20), "validation": reviews(6)}),
        text_columns="review",
        label_column="stars",
        task_type="classification",
    )
    sizes = {split: len(data) for split, data in task.load().items()}
    if sizes != {"train": 16, "validation": 6, "test": 4}:
        raise Wrong(f"splits carved as {sizes}")
    return ""


def _named_task_loads() -> str:
    splits = load_task("nyt_sentiment")
    if sorted(splits) != ["test", "train", "validation"] or splits["train"].column_names != ["text", "label"]:
        raise Wrong(f"nyt_sentiment loaded as {splits}")
    return ""


TASK_CASES = in_area(
    "tasks",
    [
        Case("get_task('movie')", lambda: get_task("movie"), ("'movie'", "movie_sentiment")),
        Case(
            "get_task('movie_sentment') (near miss)",
            lambda: get_task("movie_sentment"),
            ("movie_sentment", "did you mean 'movie_sentiment'"),
        ),
        Case("get_task('glue/sst2')", lambda: get_task("glue/sst2"), ("glue/sst2", "did you mean 'sst2'")),
        Case("get_task('SST-2')", lambda: get_task("SST-2"), ("SST-2", "sst2")),
        Case("get_task(None)", lambda: get_task(None), ("None", "movie_sentiment")),  # type: ignore[arg-type]
        Case("load_task('bbc')", lambda: load_task("bbc"), ("'bbc'", "bbc_topic")),
        Case(
            "Hub task sst2 loaded offline",
            lambda: get_task("sst2").load(),
            ("sst2", "HF_HUB_OFFLINE", "movie_sentiment"),
        ),
        Case(
            "Hub task stsb: check_available() offline",
            lambda: get_task("stsb").check_available(),
            ("stsb", "HF_HUB_OFFLINE", "movie_sentiment"),
        ),
        Case(
            "Hub task offline, HF_HUB_OFFLINE set after import",
            _hub_task_offline_set_late,
            ("mrpc", "HF_HUB_OFFLINE"),
        ),
        Case(
            "Task.from_hub offline",
            lambda: Task.from_hub(
                "imdb_sentiment", "stanfordnlp/imdb", text_columns="text", task_type="classification"
            ),
            ("stanfordnlp/imdb", "HF_HUB_OFFLINE"),
        ),
        Case(
            "Task.from_hub with an empty dataset id",
            lambda: Task.from_hub("x", "", text_columns="text", task_type="classification"),
            ("dataset id",),
        ),
        Case(
            "from_dataset: text column 'text' missing", lambda: _from_dataset(text_columns="text"), ("'text'", "review")
        ),
        Case(
            "from_dataset: label column 'label' missing",
            lambda: _from_dataset(label_column="label"),
            ("'label'", "stars"),
        ),
        Case(
            "from_dataset: text column = label column",
            lambda: _from_dataset(text_columns="stars"),
            ("stars", "different"),
        ),
        Case(
            "from_dataset: text column of numbers",
            lambda: _from_dataset(reviews(ids=list(range(20))), text_columns="ids"),
            ("'ids'", "not strings"),
        ),
        Case(
            "from_dataset: three text columns", lambda: _from_dataset(text_columns=["a", "b", "c"]), ("3 text columns",)
        ),
        Case("from_dataset: no rows", lambda: _from_dataset(reviews(0)), ("'train'", "empty")),
        Case(
            "from_dataset: empty test split",
            lambda: _from_dataset(DatasetDict({"train": reviews(), "test": reviews().select([])})),
            ("'test'", "empty"),
        ),
        Case(
            "from_dataset: splits without 'train'",
            lambda: _from_dataset(DatasetDict({"training": reviews()})),
            ("'train'", "training"),
        ),
        Case(
            "from_dataset: a pandas DataFrame",
            lambda: _from_dataset(reviews().to_pandas()),
            ("DataFrame", "Dataset"),
        ),
        Case(
            "from_dataset: a dict of columns",
            lambda: _from_dataset({"review": ["a", "b"], "stars": [0, 1]}),
            ("dict", "Dataset"),
        ),
        Case(
            "from_dataset: task name ''",
            lambda: Task.from_dataset(
                "", reviews(), text_columns="review", label_column="stars", task_type="classification"
            ),
            ("name",),
        ),
        Case(
            "from_dataset: task_type 'binary'", lambda: _from_dataset(task_type="binary"), ("binary", "classification")
        ),
        Case(
            "regression task with metric accuracy",
            lambda: _from_dataset(
                reviews(stars=[i / 4 for i in range(20)]), task_type="regression", metrics=["accuracy"]
            ),
            ("accuracy", "regression"),
        ),
        Case(
            "classification task with metric pearson",
            lambda: _from_dataset(metrics=["pearson"]),
            ("pearson", "classification"),
        ),
        Case("unknown metric 'acc'", lambda: _from_dataset(metrics=["acc"]), ("'acc'", "accuracy")),
        Case("metrics accuracy twice", lambda: _from_dataset(metrics=["accuracy", "accuracy"]), ("accuracy", "twice")),
        Case(
            "metric f1 on a 3-class task",
            lambda: _from_dataset(reviews(stars=[i % 3 for i in range(20)]), metrics=["f1"]),
            ("f1", "3 classes", "macro_f1"),
        ),
        Case(
            "regression task with text labels",
            lambda: _from_dataset(reviews(stars=["pos", "neg"] * 10), task_type="regression"),
            ("stars", "numbers"),
        ),
        Case(
            "classification task with real-valued labels",
            lambda: _from_dataset(reviews(stars=[i / 4 for i in range(20)])),
            ("stars", "regression"),
        ),
        Case(
            "class id 2 with two label_names",
            lambda: _from_dataset(reviews(stars=[i % 3 for i in range(20)]), label_names=["neg", "pos"]),
            ("2", "label_names"),
        ),
        Case("only one class in the labels", lambda: _from_dataset(reviews(stars=[0] * 20)), ("one class", "stars")),
        Case(
            "a missing (None) label",
            lambda: _from_dataset(reviews(stars=[None] + [i % 2 for i in range(19)])),
            ("stars", "missing"),
        ),
        Case(
            "a missing (None) text",
            lambda: _from_dataset(reviews(review=[None] + [f"text {i}" for i in range(19)])),
            ("review", "null"),
        ),
        Case("validation_fraction 1.5", lambda: _from_dataset(validation_fraction=1.5), ("validation_fraction", "1.5")),
        Case("test_fraction 0", lambda: _from_dataset(test_fraction=0), ("test_fraction", "0")),
        Case(
            "validation_fraction '0.1' (a string)",
            lambda: _from_dataset(validation_fraction="0.1"),
            ("validation_fraction", "'0.1'"),
        ),
        Case(
            "test_fraction 0.99 of 5 rows",
            lambda: _from_dataset(reviews(5), test_fraction=0.99),
            ("test", "0.99", "5"),
        ),
        Case(
            "tokenize the source rows, not task.load()",
            _tokenize_untokenized_columns,
            ("my_reviews", "text", "task.load()"),
        ),
        Case(
            "from_files: a file that does not exist",
            lambda: _from_files(os.path.join(FX.tmp("d"), "no_such.csv")),
            ("no_such.csv", "does not exist"),
        ),
        Case("from_files: a folder", lambda: _from_files(FX.tmp("data_folder")), ("data_folder", "folder")),
        Case("from_files: an .xlsx file", lambda: _from_files(data_file("reviews.xlsx")), ("reviews.xlsx", ".csv")),
        Case("from_files: a .tsv file", lambda: _from_files(data_file("reviews.tsv")), (".tsv", ".csv")),
        Case(
            "from_files: split 'dev'",
            lambda: _from_files({"train": data_file("train.csv"), "dev": data_file("dev.csv")}),
            ("'dev'", "validation"),
        ),
        Case(
            "from_files: no train file",
            lambda: _from_files({"test": data_file("test.csv")}),
            ("'train'",),
        ),
        Case(
            "from_files: csv train + json test",
            lambda: _from_files({"train": data_file("train.csv"), "test": data_file("test.json", "{}")}),
            (".csv", ".json"),
        ),
        Case(
            "from_files: a list of paths",
            lambda: _from_files([data_file("a.csv"), data_file("b.csv")]),
            ("files",),
        ),
        Case(
            "from_files: malformed json",
            lambda: _from_files(data_file("bad.json", '{"review": "good", "stars": 1\n{broken')),
            ("could not read", "bad.json"),
        ),
        Case("from_files: an empty csv", lambda: _from_files(data_file("empty.csv", "")), ("empty.csv", "empty")),
        Case(
            "from_files: a csv with only a header",
            lambda: _from_files(data_file("header.csv", "review,stars\n")),
            ("header.csv", "empty"),
        ),
        Case(
            "from_files: csv without the label column",
            lambda: _from_files(data_file("scores.csv", REVIEWS_CSV.replace("stars", "score"))),
            ("'stars'", "score"),
        ),
        Case(
            "valid edge: from_files, one csv carved into 3 splits", lambda: _from_files(data_file("ok.csv")), valid=True
        ),
        Case("valid edge: regression task, spearman first", _regression_ok, valid=True),
        Case(
            "valid edge: metrics 'accuracy' (a lone name, not a list)",
            lambda: _from_dataset(metrics="accuracy"),
            valid=True,
        ),
        Case("valid edge: train + validation given, test carved", _splits_ok, valid=True),
        Case("valid edge: named offline task nyt_sentiment loads", _named_task_loads, valid=True),
    ],
)


# =========================================================================== multitask cases
_ENCODER: dict[str, Any] = {key: value for key, value in _BERT.items() if key != "num_labels"}
HEADS = (
    TaskHead("sentiment", ("negative", "positive")),
    TaskHead("topic", ("a", "b", "c")),
    TaskHead("score", (), "regression"),
)


def multitask_model(heads: Any = HEADS) -> MultitaskModel:
    torch.manual_seed(0)
    return MultitaskModel.from_encoder_config(BertConfig(**_ENCODER), heads)


def task_rows(head: TaskHead, n: int = 16, labels: list[Any] | None = None, label_feature: Any = None) -> Dataset:
    """Tokenized rows of one task (``input_ids``, ``attention_mask``, ``labels`` typed as the task's)."""
    generator = torch.Generator().manual_seed(n)
    ids = torch.randint(5, VOCAB, (n, SEQ), generator=generator)
    if labels is None:
        labels = [float(i % 2) for i in range(n)] if head.task_type == "regression" else [i % 2 for i in range(n)]
    if label_feature is None:
        label_feature = Value("float32") if head.task_type == "regression" else ClassLabel(names=list(head.label_names))
    features = Features(
        {
            "input_ids": SequenceFeature(Value("int64")),
            "attention_mask": SequenceFeature(Value("int8")),
            "labels": label_feature,
        }
    )
    return Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ] * n, "labels": labels}, features=features
    )


def per_task(n: int = 16, **changes: Any) -> dict[str, Dataset]:
    """``{task: rows}`` for the three heads; ``changes`` replace (a Dataset) or drop (None) a task."""
    data = {head.name: task_rows(head, n) for head in HEADS}
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def _multitask_trainer(cls: Any = MultitaskTrainer, model: Any = None, **kwargs: Any) -> Any:
    kwargs.setdefault("train_dataset", per_task())
    kwargs.setdefault("eval_dataset", per_task(8))
    return cls(
        model=multitask_model() if model is None else model,
        args=args(FX.tmp("mt-run"), max_steps=2, per_device_train_batch_size=4),
        processing_class=FX.tokenizer(),
        **kwargs,
    )


def _multitask_train(**kwargs: Any) -> str:
    _multitask_trainer(**kwargs).train()
    return ""


def _multitask_evaluate_unknown_task() -> None:
    _multitask_trainer().evaluate("topc")


def _multitask_plain_model() -> str:
    """A stock single-task model handed per-task datasets: it would train one head on every task."""
    _multitask_trainer(model=tiny_bert()).train()
    return ""


def _stock_trainer_rows_without_task_ids() -> None:
    model = multitask_model()
    Trainer(
        model=model,
        args=args(FX.tmp("mt-stock"), max_steps=2),
        train_dataset=FX.dataset,  # rows with input_ids, labels, no task_ids
        callbacks=[PruningCallback(CONFIGS["magnitude"]())],
    ).train()


def _forward(model: MultitaskModel, **inputs: Any) -> str:
    model(input_ids=torch.randint(5, VOCAB, (2, SEQ)), **inputs)
    return ""


def _multitask_pruning_trainer_ok() -> str:
    trainer = _multitask_trainer(
        MultitaskPruningTrainer,
        pruning=CONFIGS["magnitude"](),
        mixture=TaskMixture(sampling="temperature", temperature=2.0),
    )
    trainer.train()
    metrics = trainer.evaluate()
    missing = [f"eval_{head.name}_loss" for head in HEADS if f"eval_{head.name}_loss" not in metrics]
    if missing:
        raise Wrong(f"evaluate() lacks {missing}: {sorted(metrics)}")
    return ""


def _heads_from_named_tasks() -> str:
    model = multitask_model([get_task("movie_sentiment"), get_task("movie_intensity"), get_task("bbc_topic")])
    if [head.num_labels for head in model.heads_spec] != [2, 1, 5]:
        raise Wrong(f"heads built as {model.heads_spec}")
    return ""


def _collate(rows: list[dict[str, Any]], task_types: Any = ("classification", "regression"), **kwargs: Any) -> None:
    MultitaskCollator(FX.tokenizer(), task_types, **kwargs)(rows)


def _row(**extra: Any) -> dict[str, Any]:
    return {"input_ids": [2, 7, 8, 3], "attention_mask": [1, 1, 1, 1], **extra}


def _mixture_probabilities(mixture: Any) -> None:
    mixture.probabilities({"sentiment": 40, "topic": 20})


def _tiny_temperature_ok() -> str:
    shares = TaskMixture(sampling="temperature", temperature=1e-3).probabilities({"big": 10**7, "small": 10})
    if not abs(sum(shares.values()) - 1) < 1e-9 or shares["big"] < 0.99:
        raise Wrong(f"temperature 1e-3 gave {shares}")
    return ""


MULTITASK_CASES = in_area(
    "multitask",
    [
        # --- the model
        Case(
            "model: duplicate task names",
            lambda: multitask_model([HEADS[0], HEADS[0]]),
            ("'sentiment'", "twice"),
        ),
        Case(
            "model: task name with a space",
            lambda: multitask_model([TaskHead("movie sentiment", ("neg", "pos"))]),
            ("movie sentiment",),
        ),
        Case("model: task name ''", lambda: multitask_model([TaskHead("", ("neg", "pos"))]), ("''",)),
        Case(
            "model: a 1-class head",
            lambda: multitask_model([TaskHead("sentiment", ("positive",))]),
            ("'sentiment'", "at least 2"),
        ),
        Case(
            "model: a classification head without class names",
            lambda: multitask_model([TaskHead("sentiment")]),
            ("'sentiment'", "at least 2"),
        ),
        Case(
            "model: a regression head with class names",
            lambda: multitask_model([TaskHead("score", ("low", "high"), "regression")]),
            ("'score'", "regression"),
        ),
        Case(
            "model: task_type 'binary'",
            lambda: multitask_model([TaskHead("sentiment", ("n", "p"), "binary")]),  # type: ignore[arg-type]
            ("binary", "classification"),
        ),
        Case("model: empty task list", lambda: multitask_model([]), ("tasks", "[]")),
        Case("model: tasks 'sentiment' (a string)", lambda: multitask_model("sentiment"), ("tasks", "'sentiment'")),
        Case(
            "model: task names instead of tasks",
            lambda: multitask_model(["movie_sentiment", "bbc_topic"]),
            ("'movie_sentiment'", "get_task"),
        ),
        Case(
            "model: from_encoder of a missing local folder",
            lambda: MultitaskModel.from_encoder(os.path.join(FX.tmp("enc"), "no_such_encoder"), list(HEADS)),
            ("no_such_encoder", "does not exist"),
        ),
        Case(
            "model: task_model('topc')",
            lambda: multitask_model().task_model("topc"),
            ("'topc'", "did you mean 'topic'"),
        ),
        Case("model: forward without task_ids (3 tasks)", lambda: _forward(multitask_model()), ("task_ids",)),
        Case(
            "model: forward with task id 7",
            lambda: _forward(multitask_model(), task_ids=torch.tensor([0, 7])),
            ("task_ids", "7"),
        ),
        # --- the trainer
        Case(
            "trainer: train_dataset has an unknown task 'scroe'",
            lambda: _multitask_trainer(train_dataset=per_task(score=None, scroe=task_rows(HEADS[2]))),
            ("'scroe'", "score"),
        ),
        Case(
            "trainer: train_dataset lacks task 'score'",
            lambda: _multitask_trainer(train_dataset=per_task(score=None)),
            ("lacks", "score"),
        ),
        Case(
            "trainer: eval_dataset has an unknown task 'topc'",
            lambda: _multitask_trainer(eval_dataset={"topc": task_rows(HEADS[1], 8)}),
            ("eval_dataset", "'topc'"),
        ),
        Case(
            "trainer: an empty task split",
            lambda: _multitask_trainer(train_dataset=per_task(topic=task_rows(HEADS[1]).select([]))),
            ("'topic'", "empty"),
        ),
        Case(
            "trainer: 3-class ClassLabel for the 2-class head",
            lambda: _multitask_trainer(
                train_dataset=per_task(sentiment=task_rows(HEADS[0], label_feature=ClassLabel(names=["a", "b", "c"])))
            ),
            ("sentiment", "3 classes", "2"),
        ),
        Case(
            "trainer: class ids 0..4 for the 3-class head",
            lambda: _multitask_trainer(
                train_dataset=per_task(
                    topic=task_rows(HEADS[1], labels=[i % 5 for i in range(16)], label_feature=Value("int64"))
                )
            ),
            ("topic", "0..4", "3"),
        ),
        Case(
            "trainer: class labels for the regression head",
            lambda: _multitask_trainer(train_dataset=per_task(score=task_rows(HEADS[0]))),
            ("score", "regression"),
        ),
        Case(
            "trainer: compute_metrics for unknown task 'topc'",
            lambda: _multitask_trainer(compute_metrics={"topc": lambda p: {}}),
            ("'topc'", "topic"),
        ),
        Case(
            "trainer: compute_metrics a list",
            lambda: _multitask_trainer(compute_metrics=[lambda p: {}]),
            ("compute_metrics",),
        ),
        Case("trainer: mixture='uniform'", lambda: _multitask_trainer(mixture="uniform"), ("mixture", "'uniform'")),
        Case(
            "trainer: mixture as a dict",
            lambda: _multitask_trainer(mixture={"sampling": "uniform"}),
            ("mixture", "TaskMixture"),
        ),
        Case(
            "trainer: mixture weights for unknown task 'topc'",
            lambda: _multitask_train(mixture=TaskMixture(weights={"sentiment": 1, "topc": 1, "score": 1})),
            ("'topc'", "did you mean 'topic'"),
        ),
        Case(
            "trainer: mixture weights without task 'score'",
            lambda: _multitask_train(mixture=TaskMixture(weights={"sentiment": 1, "topic": 1})),
            ("score",),
        ),
        Case(
            "trainer: one dataset without task_ids",
            lambda: _multitask_train(train_dataset=task_rows(HEADS[0])),
            ("task_ids",),
        ),
        Case("trainer: evaluate('topc')", _multitask_evaluate_unknown_task, ("'topc'", "did you mean 'topic'")),
        Case(
            "trainer: a single-task model with per-task datasets",
            _multitask_plain_model,
            ("BertForSequenceClassification", "MultitaskModel.from_encoder"),
        ),
        Case(
            "stock Trainer + callback: rows without task_ids",
            _stock_trainer_rows_without_task_ids,
            ("task_ids", "with_task_ids", "MultitaskCollator"),
        ),
        # --- the mixture
        Case("mixture: sampling 'temp'", lambda: TaskMixture(sampling="temp"), ("'temp'", "temperature")),  # type: ignore[arg-type]
        Case(
            "mixture: temperature 0", lambda: TaskMixture(sampling="temperature", temperature=0), ("temperature", "0")
        ),
        Case("mixture: temperature -1", lambda: TaskMixture(temperature=-1), ("temperature", "-1")),
        Case("mixture: temperature '2' (a string)", lambda: TaskMixture(temperature="2"), ("temperature", "'2'")),  # type: ignore[arg-type]
        Case("mixture: temperature inf", lambda: TaskMixture(temperature=float("inf")), ("temperature", "inf")),
        Case("mixture: weights with -1", lambda: TaskMixture(weights={"a": -1, "b": 1}), ("'a'", "-1")),
        Case("mixture: weights all 0", lambda: TaskMixture(weights={"a": 0, "b": 0}), ("weights", "sum")),
        Case("mixture: weights a list", lambda: TaskMixture(weights=[2, 1]), ("weights", "[2, 1]")),  # type: ignore[arg-type]
        Case("mixture: weight '2' (a string)", lambda: TaskMixture(weights={"a": "2"}), ("'a'", "'2'")),  # type: ignore[dict-item]
        Case(
            "mixture: weights for a task not in the mixture",
            lambda: _mixture_probabilities(TaskMixture(weights={"sentiment": 1, "topc": 1})),
            ("'topc'", "did you mean 'topic'"),
        ),
        Case(
            "mixture: weights missing a task",
            lambda: _mixture_probabilities(TaskMixture(weights={"sentiment": 1})),
            ("'topic'",),
        ),
        Case("mixture: size_cap 0", lambda: TaskMixture(size_cap=0), ("size_cap", "0")),
        Case("mixture: size_cap 1.5", lambda: TaskMixture(size_cap=1.5), ("size_cap", "1.5")),  # type: ignore[arg-type]
        Case("mixture: batches 'per_task'", lambda: TaskMixture(batches="per_task"), ("per_task", "homogeneous")),  # type: ignore[arg-type]
        Case("mixture: TaskMixture('uniform') (positional)", lambda: TaskMixture("uniform"), ("uniform", "sampling=")),  # type: ignore[call-arg]
        Case(
            "mixture: keyword typo temprature",
            lambda: TaskMixture(temprature=3),  # type: ignore[call-arg]
            ("temprature", "did you mean 'temperature'"),
        ),
        Case(
            "mixture: from_dict typo temprature",
            lambda: TaskMixture.from_dict({"temprature": 3}),
            ("temprature", "temperature"),
        ),
        Case("mixture: probabilities of no tasks", lambda: TaskMixture().probabilities({}), ("task_sizes",)),
        Case("mixture: a task with 0 rows", lambda: TaskMixture().probabilities({"a": 0, "b": 5}), ("'a'", "0")),
        # --- the batch sampler
        Case("sampler: batch_size 0", lambda: MultitaskBatchSampler({"a": 8}, 0), ("batch_size", "0")),
        Case("sampler: batch_size -4", lambda: MultitaskBatchSampler({"a": 8}, -4), ("batch_size", "-4")),
        Case("sampler: batch_size 2.5", lambda: MultitaskBatchSampler({"a": 8}, 2.5), ("batch_size", "2.5")),  # type: ignore[arg-type]
        Case("sampler: batch_size '8'", lambda: MultitaskBatchSampler({"a": 8}, "8"), ("batch_size", "'8'")),  # type: ignore[arg-type]
        Case("sampler: batch_size True", lambda: MultitaskBatchSampler({"a": 8}, True), ("batch_size", "True")),
        Case("sampler: task sizes a list", lambda: MultitaskBatchSampler([8, 4], 2), ("task_sizes", "[8, 4]")),  # type: ignore[arg-type]
        Case("sampler: seed -1", lambda: MultitaskBatchSampler({"a": 8}, 2, seed=-1), ("seed", "-1")),
        Case("sampler: num_batches 0", lambda: MultitaskBatchSampler({"a": 8}, 2, num_batches=0), ("num_batches", "0")),
        Case(
            "sampler: mixture 'uniform'",
            lambda: MultitaskBatchSampler({"a": 8}, 2, "uniform"),  # type: ignore[arg-type]
            ("mixture", "'uniform'"),
        ),
        # --- the collator
        Case("collator: rows without task_ids", lambda: _collate([_row(labels=1), _row(labels=0)]), ("task_ids",)),
        Case(
            "collator: rows with 'task' instead of task_ids",
            lambda: _collate([_row(labels=1, task=0)]),
            ("task_ids", "'task'"),
        ),
        Case("collator: task id 5 of 2 tasks", lambda: _collate([_row(labels=1, task_ids=5)]), ("task_ids=5", "0..1")),
        Case(
            "collator: task_types 'classification' (a string)",
            lambda: _collate([_row(task_ids=0)], "classification"),
            ("task_types", "'classification'"),
        ),
        Case("collator: task_types ['binary']", lambda: _collate([_row(task_ids=0)], ["binary"]), ("binary",)),
        Case(
            "collator: some rows without labels",
            lambda: _collate([_row(labels=1, task_ids=0), _row(task_ids=1)]),
            ("label", "[1]"),
        ),
        Case("collator: an empty batch", lambda: _collate([]), ("empty",)),
        Case(
            "collator: pad_to_multiple_of 0",
            lambda: _collate([_row(task_ids=0)], pad_to_multiple_of=0),
            ("pad_to_multiple_of", "0"),
        ),
        Case(
            "valid edge: one-task model, forward without task_ids",
            lambda: _forward(multitask_model([HEADS[0]])),
            valid=True,
        ),
        Case("valid edge: heads from named tasks (incl. regression)", _heads_from_named_tasks, valid=True),
        Case("valid edge: temperature 1e-3 with 10^7 rows (no overflow)", _tiny_temperature_ok, valid=True),
        Case(
            "valid edge: MultitaskPruningTrainer, temperature mixture, evaluate",
            _multitask_pruning_trainer_ok,
            valid=True,
        ),
    ],
)


# =========================================================================== multitask recipe cases
TWO_TASKS = ["movie_sentiment", "bbc_topic"]
MY_REVIEWS = {
    "name": "my_reviews",
    "files": "reviews.csv",
    "text_columns": ["review"],
    "label_column": "stars",
    "task_type": "classification",
}


def multitask_recipe(tasks: Any = None, data: dict[str, str] | None = None, **changes: Any) -> str:
    """A recipe file listing ``tasks`` (default: two named offline tasks) instead of ``task``; ``data``
    files (name -> text) are written beside it (a user task's paths are relative to the recipe)."""
    folder = FX.tmp("mt-recipe")
    for name, text in (data or {}).items():
        write(os.path.join(folder, name), text)
    changes.setdefault("task", None)
    text = recipe_text(tasks=TWO_TASKS if tasks is None else tasks, **changes)
    return write(os.path.join(folder, "recipe.yaml"), text)


def _load_multitask(tasks: Any = None, data: dict[str, str] | None = None, **changes: Any) -> str:
    Recipe.from_yaml(multitask_recipe(tasks, data, **changes))
    return ""


def _cli_multitask(tasks: Any = None, *extra: str, data: dict[str, str] | None = None, **changes: Any) -> CliRun:
    return cli("train", multitask_recipe(tasks, data, **changes), *extra)


def _user_task(**changes: Any) -> dict[str, Any]:
    task = {**MY_REVIEWS, **changes}
    return {key: value for key, value in task.items() if value is not None}


def _multitask_recipe_ok() -> str:
    recipe = Recipe.from_yaml(
        multitask_recipe(
            ["movie_sentiment", _user_task(), {"name": "nyt_sentiment", "max_train_examples": 50}],
            {"reviews.csv": REVIEWS_CSV},
            mixture={"sampling": "temperature", "temperature": 2.0, "batches": "mixed"},
        )
    )
    if recipe.task_names != ["movie_sentiment", "my_reviews", "nyt_sentiment"] or not recipe.is_multitask:
        raise Wrong(f"recipe read as tasks {recipe.task_names}")
    return ""


def _cli_multitask_subprocess_unknown() -> CliRun:
    return cli_subprocess("train", multitask_recipe(["movie_sentiment", "bbc_topics"]))


MULTITASK_RECIPE_CASES = in_area(
    "multitask recipe",
    [
        Case(
            "tasks: unknown 'movie_sentment'",
            lambda: _load_multitask(["movie_sentment", "bbc_topic"]),
            ("movie_sentment", "did you mean 'movie_sentiment'"),
        ),
        Case(
            "tasks: movie_sentiment twice",
            lambda: _load_multitask(["movie_sentiment", "movie_sentiment"]),
            ("movie_sentiment", "twice"),
        ),
        Case("tasks: []", lambda: _load_multitask([]), ("tasks",)),
        Case("tasks: [1, 2]", lambda: _load_multitask([1, 2]), ("tasks[0]", "1")),
        Case("task and tasks together", lambda: _load_multitask(task="movie_sentiment"), ("task", "tasks", "not both")),
        Case(
            "tasks: a Hub task offline (sst2)",
            lambda: _load_multitask(["movie_sentiment", "sst2"]),
            ("sst2", "HF_HUB_OFFLINE", "movie_sentiment"),
        ),
        Case(
            "tasks: max_train_examples 0",
            lambda: _load_multitask(["movie_sentiment", {"name": "nyt_sentiment", "max_train_examples": 0}]),
            ("max_train_examples", "0"),
        ),
        Case(
            "tasks: user task's file missing",
            lambda: _load_multitask(["movie_sentiment", _user_task()]),
            ("reviews.csv", "does not exist"),
        ),
        Case(
            "tasks: user task without text_columns",
            lambda: _load_multitask(["movie_sentiment", _user_task(text_columns=None)], {"reviews.csv": REVIEWS_CSV}),
            ("my_reviews", "text_columns"),
        ),
        Case(
            "tasks: user task without task_type",
            lambda: _load_multitask(["movie_sentiment", _user_task(task_type=None)], {"reviews.csv": REVIEWS_CSV}),
            ("my_reviews", "task_type"),
        ),
        Case(
            "tasks: user task key typo text_column",
            lambda: _load_multitask(
                ["movie_sentiment", _user_task(text_columns=None, text_column=["review"])], {"reviews.csv": REVIEWS_CSV}
            ),
            ("text_column", "did you mean 'text_columns'"),
        ),
        Case(
            "tasks: user task named like a built-in task",
            lambda: _load_multitask(["bbc_topic", _user_task(name="movie_sentiment")], {"reviews.csv": REVIEWS_CSV}),
            ("movie_sentiment", "built-in"),
        ),
        Case(
            "tasks: user task without a name",
            lambda: _load_multitask(["movie_sentiment", _user_task(name=None)], {"reviews.csv": REVIEWS_CSV}),
            ("name",),
        ),
        Case(
            "tasks: user task with files and hub_dataset",
            lambda: _load_multitask(["movie_sentiment", _user_task(hub_dataset="stanfordnlp/imdb")]),
            ("files", "hub_dataset"),
        ),
        Case(
            "tasks: user task's files with split 'dev'",
            lambda: _load_multitask(
                ["movie_sentiment", _user_task(files={"train": "reviews.csv", "dev": "reviews.csv"})],
                {"reviews.csv": REVIEWS_CSV},
            ),
            ("'dev'", "validation"),
        ),
        Case(
            "tasks: user task's file is a .tsv",
            lambda: _load_multitask(["movie_sentiment", _user_task(files="reviews.tsv")], {"reviews.tsv": REVIEWS_CSV}),
            (".tsv", ".csv"),
        ),
        Case(
            "tasks: user task's csv lacks the label column",
            lambda: _load_multitask(
                ["movie_sentiment", _user_task()], {"reviews.csv": REVIEWS_CSV.replace("stars", "rating")}
            ),
            ("'stars'", "rating"),
        ),
        Case(
            "tasks: user regression task with metric accuracy",
            lambda: _load_multitask(
                ["movie_sentiment", _user_task(task_type="regression", metrics=["accuracy"])],
                {"reviews.csv": REVIEWS_CSV},
            ),
            ("accuracy", "regression"),
        ),
        Case(
            "recipe mixture: sampling 'temp'",
            lambda: _load_multitask(mixture={"sampling": "temp"}),
            ("mixture", "'temp'", "temperature"),
        ),
        Case(
            "recipe mixture: temperature 0", lambda: _load_multitask(mixture={"temperature": 0}), ("temperature", "0")
        ),
        Case(
            "recipe mixture: key typo temprature",
            lambda: _load_multitask(mixture={"temprature": 3}),
            ("temprature", "did you mean 'temperature'"),
        ),
        Case(
            "recipe mixture: 'uniform' (a string)", lambda: _load_multitask(mixture="uniform"), ("mixture", "'uniform'")
        ),
        Case(
            "recipe mixture: weights for a task not listed",
            lambda: _load_multitask(mixture={"weights": {"movie_sentiment": 1, "bbc_topc": 1}}),
            ("bbc_topc", "bbc_topic"),
        ),
        Case(
            "recipe mixture: weights missing a task",
            lambda: _load_multitask(mixture={"weights": {"movie_sentiment": 1}}),
            ("bbc_topic",),
        ),
        Case(
            "recipe mixture: weights summing to 0",
            lambda: _load_multitask(mixture={"weights": {"movie_sentiment": 0, "bbc_topic": 0}}),
            ("weights", "sum"),
        ),
        Case(
            "recipe mixture: size_cap -1",
            lambda: _load_multitask(mixture={"size_cap": -1}),
            ("size_cap", "-1"),
        ),
        Case(
            "recipe mixture: in a single-task recipe",
            lambda: load_recipe(mixture={"sampling": "uniform"}),
            ("mixture", "tasks"),
        ),
        # --- the CLI
        Case(
            "train: tasks with unknown 'bbc_topics'",
            lambda: _cli_multitask(["movie_sentiment", "bbc_topics"]),
            ("bbc_topics", "bbc_topic"),
        ),
        Case(
            "train: tasks with a duplicate",
            lambda: _cli_multitask(["bbc_topic", "movie_sentiment", "bbc_topic"]),
            ("bbc_topic", "twice"),
        ),
        Case(
            "train: tasks with a missing user file",
            lambda: _cli_multitask(["movie_sentiment", _user_task(files={"train": "data/train.csv"})]),
            ("train.csv", "does not exist"),
        ),
        Case("train: task and tasks together", lambda: _cli_multitask(None, task="bbc_topic"), ("task", "tasks")),
        Case(
            "train: --set tasks=[...] on a single-task recipe",
            lambda: _cli_train(None, "--set", "tasks=[movie_sentiment, bbc_topic]"),
            ("task", "tasks", "not both"),
        ),
        Case(
            "train: --set mixture.temperature=0",
            lambda: _cli_multitask(None, "--set", "mixture.temperature=0"),
            ("temperature", "0"),
        ),
        Case(
            "train: --set mixture.temperature=0 over a recipe mixture",
            lambda: _cli_multitask(None, "--set", "mixture.temperature=0", mixture={"sampling": "temperature"}),
            ("temperature", "0"),
        ),
        Case(
            "train: --set mixture.sampling=temprature",
            lambda: _cli_multitask(None, "--set", "mixture.sampling=temprature"),
            ("temprature", "temperature"),
        ),
        Case(
            "train: mixture weights for a task not listed",
            lambda: _cli_multitask(None, mixture={"weights": {"movie_sentiment": 2, "sst2": 1}}),
            ("sst2", "bbc_topic"),
        ),
        Case(
            "train: a Hub task offline (stsb)",
            lambda: _cli_multitask(["movie_intensity", "stsb"]),
            ("stsb", "HF_HUB_OFFLINE"),
        ),
        Case(
            "subprocess train: tasks with unknown 'bbc_topics'",
            _cli_multitask_subprocess_unknown,
            ("bbc_topics", "bbc_topic"),
        ),
        Case("valid edge: named + user + low-resource tasks, mixed batches", _multitask_recipe_ok, valid=True),
        Case(
            "valid edge: train accepts two tasks and --set mixture.sampling=uniform",
            lambda: _cli_multitask(None, "--set", "mixture.sampling=uniform"),
            valid=True,
        ),
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
    + TASK_CASES
    + MULTITASK_CASES
    + MULTITASK_RECIPE_CASES
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


def main(argv: list[str] | None = None) -> int:
    global FX
    import argparse

    parser = argparse.ArgumentParser(description="hf_prune's bad-input battery.")
    parser.add_argument(
        "--area",
        action="append",
        choices=AREAS,
        help="Run only the cases of this area (repeatable); prints the outcomes, writes no results.",
    )
    only = parser.parse_args(argv).area
    cases = [case for case in ALL_CASES if not only or case.area in only]
    # Warnings are captured where a case checks them; keep the console to one line per case (this
    # also makes hf_prune.cli.main's own logging.basicConfig a no-op).
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()  # "Generating train split" of the user-file cases
    datasets.logging.set_verbosity(logging.CRITICAL)  # its own "Failed to load JSON" line of a case that expects it
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
            for index, case in enumerate(cases, 1):
                result = classify(case)
                results.append(result)
                print(
                    f"[{index:3d}/{len(cases)}] {result.classification:<7} {case.area:<17} {case.name}"
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
    if only:
        print(f"\n{len(results)} cases in {seconds:.0f} s: " + ", ".join(f"{counts.get(c, 0)} {c}" for c in CLASSES))
        return 0
    dirty = _uncommitted_library_files()
    payload = {
        "machine": info,
        "uncommitted_library_files": dirty,
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
    md_path = write_text("bad_input_battery.md", markdown(results, info, seconds, dirty))
    print(f"\n{len(results)} cases in {seconds:.0f} s: " + ", ".join(f"{counts.get(c, 0)} {c}" for c in CLASSES))
    print(f"wrote {os.path.relpath(json_path, ROOT)} and {os.path.relpath(md_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
