"""Task mixture probabilities, the multitask batch sampler, and its accelerate data loader."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from collections import Counter

import pytest
import torch
from accelerate import Accelerator, skip_first_batches

from hf_prune.errors import InvalidConfigError
from hf_prune.multitask.sampling import MultitaskBatchSampler, TaskMixture, prepared_train_dataloader

SIZES = {"big": 800, "mid": 150, "small": 50}
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "multitask_sharding.py")


def _expected(raw: dict[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    return {task: value / total for task, value in raw.items()}


# Written out by hand from the formulas (not from the code under test).
MODES = {
    "proportional": (TaskMixture(), _expected({"big": 800, "mid": 150, "small": 50})),
    "temperature_cap": (
        TaskMixture(sampling="temperature", temperature=2.0, size_cap=400),
        _expected({"big": math.sqrt(400), "mid": math.sqrt(150), "small": math.sqrt(50)}),
    ),
    "uniform": (TaskMixture(sampling="uniform"), {"big": 1 / 3, "mid": 1 / 3, "small": 1 / 3}),
    "weights": (TaskMixture(weights={"big": 1, "mid": 2, "small": 1}), {"big": 0.25, "mid": 0.5, "small": 0.25}),
}


def _task_share(sampler: MultitaskBatchSampler, rows: list[int]) -> dict[str, float]:
    counts = Counter(sampler.task_of(i) for i in rows)
    return {task: counts[task] / len(rows) for task in SIZES}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_probabilities_follow_the_formula(mode):
    mixture, expected = MODES[mode]
    assert mixture.probabilities(SIZES) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("batches", ["homogeneous", "mixed"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_sampled_proportions_within_tolerance(mode, batches):
    base, expected = MODES[mode]
    mixture = TaskMixture(**{**base.to_dict(), "batches": batches})
    sampler = MultitaskBatchSampler(SIZES, batch_size=4, mixture=mixture, seed=5, num_batches=4000)
    epoch = list(sampler)
    assert len(epoch) == 4000 and all(len(batch) == 4 for batch in epoch)
    if batches == "homogeneous":
        # The task is drawn once per batch: 4000 draws, standard error <= 0.008.
        assert all(len({sampler.task_of(i) for i in batch}) == 1 for batch in epoch)
        share = _task_share(sampler, [batch[0] for batch in epoch])
        assert share == pytest.approx(expected, abs=0.03)
    else:
        share = _task_share(sampler, [i for batch in epoch for i in batch])
        assert share == pytest.approx(expected, abs=0.02)
        mixing = sum(len({sampler.task_of(i) for i in batch}) > 1 for batch in epoch)
        assert mixing > 1000  # most batches hold rows of several tasks


def test_temperature_one_is_proportional_and_large_temperature_tends_to_uniform():
    assert TaskMixture(sampling="temperature", temperature=1.0).probabilities(SIZES) == pytest.approx(
        MODES["proportional"][1]
    )
    hot = TaskMixture(sampling="temperature", temperature=1e6).probabilities(SIZES)
    assert hot == pytest.approx(MODES["uniform"][1], abs=1e-5)
    # A tiny temperature would overflow n ** (1 / T) in floats; the largest task takes everything.
    cold = TaskMixture(sampling="temperature", temperature=0.001).probabilities(SIZES)
    assert cold == pytest.approx({"big": 1.0, "mid": 0.0, "small": 0.0})


def test_zero_weight_task_is_never_drawn_and_not_counted_in_the_epoch():
    mixture = TaskMixture(weights={"big": 0, "mid": 1, "small": 1}, batches="mixed")
    sampler = MultitaskBatchSampler(SIZES, batch_size=10, mixture=mixture)
    assert len(sampler) == math.ceil((150 + 50) / 10)
    assert "big" not in {sampler.task_of(i) for batch in sampler for i in batch}


def test_default_epoch_length_uses_capped_sizes():
    assert len(MultitaskBatchSampler(SIZES, batch_size=32)) == math.ceil(1000 / 32)
    capped = MultitaskBatchSampler(SIZES, batch_size=32, mixture=TaskMixture(size_cap=100))
    assert len(capped) == math.ceil((100 + 100 + 50) / 32)
    assert len(MultitaskBatchSampler(SIZES, batch_size=32, num_batches=7)) == 7


def test_global_indices_and_task_helpers():
    sampler = MultitaskBatchSampler(SIZES, batch_size=8, mixture=TaskMixture(batches="mixed"))
    assert sampler.task_offsets == {"big": 0, "mid": 800, "small": 950}
    assert sampler.total_size == 1000
    assert [sampler.task_of(i) for i in (0, 799, 800, 949, 950, 999)] == ["big", "big", "mid", "mid", "small", "small"]
    with pytest.raises(IndexError):
        sampler.task_of(1000)
    assert all(isinstance(i, int) and 0 <= i < 1000 for batch in sampler for i in batch)


def test_same_seed_and_epoch_give_identical_batches_and_epochs_are_independent():
    def batches(seed: int, epoch: int, mode: str = "homogeneous") -> list[list[int]]:
        sampler = MultitaskBatchSampler(SIZES, batch_size=4, mixture=TaskMixture(batches=mode), seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    for mode in ("homogeneous", "mixed"):
        assert batches(0, 0, mode) == batches(0, 0, mode)
        assert batches(0, 0, mode) != batches(0, 1, mode)  # set_epoch changes the order
        assert batches(0, 0, mode) != batches(1, 0, mode)  # so does the seed
    # Epoch 3 is the same whether or not epochs 0-2 were iterated first (resume needs this).
    walked = MultitaskBatchSampler(SIZES, batch_size=4, seed=0)
    for epoch in range(3):
        walked.set_epoch(epoch)
        list(walked)
    walked.set_epoch(3)
    assert list(walked) == batches(0, 3)
    # Iterating again without set_epoch repeats the epoch (as torch's DistributedSampler does).
    assert list(walked) == list(walked)


@pytest.mark.parametrize("batches", ["homogeneous", "mixed"])
def test_every_row_of_a_task_appears_once_per_cycle(batches):
    # 400 batches of 4 draw each task several times over its size, so every task cycles.
    sizes = {"a": 37, "b": 11, "c": 5}
    sampler = MultitaskBatchSampler(sizes, batch_size=4, mixture=TaskMixture(batches=batches), num_batches=400)
    stream = [i for batch in sampler for i in batch]
    for task, size in sizes.items():
        offset = sampler.task_offsets[task]
        rows = [i for i in stream if sampler.task_of(i) == task]
        assert len(rows) >= 2 * size
        cycles = [rows[k : k + size] for k in range(0, len(rows) - size + 1, size)]
        for cycle in cycles:
            assert sorted(cycle) == list(range(offset, offset + size))
        assert cycles[0] != cycles[1]  # a fresh permutation each cycle


def test_round_up_num_batches():
    sampler = MultitaskBatchSampler({"a": 9}, batch_size=2)  # 5 batches
    sampler.round_up_num_batches(2)
    assert len(sampler) == 6
    sampler.round_up_num_batches(3)
    assert len(sampler) == 6


# --- bad input: each raises InvalidConfigError naming the bad value, before any batch is drawn ---

BAD_MIXTURES = {
    "weights_sum_zero": ({"weights": {"big": 0, "mid": 0, "small": 0}}, "sum to 0"),
    "weights_empty": ({"weights": {}}, "sum to 0"),
    "negative_weight": ({"weights": {"big": 2, "mid": -1, "small": 1}}, "weights['mid']=-1"),
    "nan_weight": ({"weights": {"big": float("nan"), "mid": 1, "small": 1}}, "weights['big']=nan"),
    "weights_not_mapping": ({"weights": [1, 2, 3]}, "weights=[1, 2, 3]"),
    "weights_key_not_a_name": ({"weights": {0: 1.0}}, "weights key 0 must be a task name"),
    "temperature_zero": ({"sampling": "temperature", "temperature": 0}, "temperature=0 must be > 0"),
    "temperature_negative": ({"sampling": "temperature", "temperature": -1.5}, "temperature=-1.5 must be > 0"),
    "temperature_string": ({"temperature": "2"}, "temperature='2'"),
    "unknown_sampling": ({"sampling": "temprature"}, "sampling='temprature'.*Did you mean 'temperature'"),
    "unknown_batches": ({"batches": "homogenous"}, "batches='homogenous'"),
    "size_cap_zero": ({"size_cap": 0}, "size_cap=0"),
    "size_cap_float": ({"size_cap": 10.5}, "size_cap=10.5"),
}


@pytest.mark.parametrize("case", sorted(BAD_MIXTURES))
def test_bad_mixture_is_refused_when_built(case):
    kwargs, message = BAD_MIXTURES[case]
    with pytest.raises(InvalidConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TaskMixture(**kwargs)


def test_from_dict_refuses_unknown_keys_with_a_suggestion():
    with pytest.raises(InvalidConfigError, match="'size_cp': did you mean 'size_cap'"):
        TaskMixture.from_dict({"size_cp": 10})


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"big": 1, "mid": 1, "smal": 1}, r"\['smal'\].*did you mean 'small'"),
        ({"big": 1, "mid": 1}, r"no weight for task\(s\) \['small'\]"),
    ],
)
def test_weights_must_name_exactly_the_tasks(weights, message):
    with pytest.raises(InvalidConfigError, match=message):
        MultitaskBatchSampler(SIZES, batch_size=4, mixture=TaskMixture(weights=weights))


BAD_SAMPLERS = {
    "batch_size_zero": ({"task_sizes": SIZES, "batch_size": 0}, "batch_size=0"),
    "batch_size_float": ({"task_sizes": SIZES, "batch_size": 2.5}, "batch_size=2.5"),
    "empty_task": ({"task_sizes": {"big": 800, "empty": 0}, "batch_size": 4}, "Task 'empty' has 0 training rows"),
    "no_tasks": ({"task_sizes": {}, "batch_size": 4}, r"task_sizes=\{\}"),
    "num_batches_zero": ({"task_sizes": SIZES, "batch_size": 4, "num_batches": 0}, "num_batches=0"),
    "negative_seed": ({"task_sizes": SIZES, "batch_size": 4, "seed": -1}, "seed=-1"),
    "mixture_not_a_mixture": ({"task_sizes": SIZES, "batch_size": 4, "mixture": "uniform"}, "mixture='uniform'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLERS))
def test_bad_sampler_arguments_are_refused(case):
    kwargs, message = BAD_SAMPLERS[case]
    with pytest.raises(InvalidConfigError, match=message):
        MultitaskBatchSampler(**kwargs)


def test_bad_epoch_and_multiple_are_refused():
    with pytest.raises(InvalidConfigError, match="epoch=-2"):
        MultitaskBatchSampler(SIZES, batch_size=4).set_epoch(-2)
    with pytest.raises(InvalidConfigError, match="multiple=0"):
        MultitaskBatchSampler(SIZES, batch_size=4).round_up_num_batches(0)


# --- accelerate: one process here; two processes below (torchrun) ---


class _IndexDataset(torch.utils.data.Dataset):
    """Every row is its own global index, so a batch shows exactly which rows were drawn."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def _as_lists(loader) -> list[list[int]]:
    return [batch.tolist() for batch in loader]


def test_prepared_loader_reaches_the_sampler_epoch_and_resume():
    sampler = MultitaskBatchSampler(SIZES, batch_size=8, mixture=TaskMixture(sampling="uniform"), seed=2)
    reference = MultitaskBatchSampler(SIZES, batch_size=8, mixture=TaskMixture(sampling="uniform"), seed=2)
    loader = prepared_train_dataloader(_IndexDataset(1000), sampler, torch.tensor, Accelerator())
    assert len(loader) == len(reference)

    def epoch_of_reference(epoch: int) -> list[list[int]]:
        reference.set_epoch(epoch)
        return list(reference)

    # What Trainer does at the start of every epoch.
    loader.set_epoch(4)
    assert sampler.epoch == 4
    assert _as_lists(loader) == epoch_of_reference(4)
    # A plain accelerate loop: DataLoaderShard counts its passes and sets the epoch on each.
    assert _as_lists(loader) == epoch_of_reference(5)
    # Resume mid-epoch: accelerate wraps the sampler once more (SkipBatchSampler).
    resumed = skip_first_batches(loader, 3)
    resumed.set_epoch(2)
    assert sampler.epoch == 2
    assert _as_lists(resumed) == epoch_of_reference(2)[3:]


def test_prepared_loader_refuses_a_dataset_of_another_size_and_clashing_arguments():
    sampler = MultitaskBatchSampler(SIZES, batch_size=8)
    with pytest.raises(InvalidConfigError, match="999 rows.*add up to 1000"):
        prepared_train_dataloader(_IndexDataset(999), sampler, torch.tensor, Accelerator())
    with pytest.raises(InvalidConfigError, match=r"\['batch_size', 'shuffle'\]"):
        prepared_train_dataloader(_IndexDataset(1000), sampler, torch.tensor, Accelerator(), batch_size=8, shuffle=True)
    with pytest.raises(InvalidConfigError, match="must be a MultitaskBatchSampler"):
        prepared_train_dataloader(_IndexDataset(1000), [[0, 1]], torch.tensor, Accelerator())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_get_disjoint_batches_that_together_make_the_single_process_stream(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        SCRIPT,
        str(tmp_path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    from tests.scripts.multitask_sharding import CASES

    for name, case in CASES.items():
        runs = [r["cases"][name] for r in ranks]
        # One process sees the whole stream; its length grown to a multiple of 2 so that no
        # process gets a batch twice and both run the same number of steps.
        reference = MultitaskBatchSampler(**case)
        reference.round_up_num_batches(2)
        assert [run["len"] for run in runs] == [len(reference) // 2] * 2
        for epoch in (0, 1):
            reference.set_epoch(epoch)
            whole = list(reference)
            mine = [run["epochs"][epoch] for run in runs]
            assert len(mine[0]) == len(mine[1]) == len(whole) // 2
            assert not {tuple(b) for b in mine[0]} & {tuple(b) for b in mine[1]}, name
            assert mine[0] == whole[0::2] and mine[1] == whole[1::2], name
        for run in runs:
            assert run["epochs"][0] != run["epochs"][1], name  # set_epoch reached the sampler
            assert run["resumed"] == run["epochs"][1][1:], name  # ...also through skip_first_batches
    # One task, one pass: the two processes' rows are disjoint and cover the task exactly.
    rows = [sorted(i for b in r["cases"]["one_task"]["epochs"][0] for i in b) for r in ranks]
    assert not set(rows[0]) & set(rows[1])
    assert sorted(rows[0] + rows[1]) == list(range(16))


def test_zero_weights_error_names_the_fix():
    with pytest.raises(InvalidConfigError) as info:
        TaskMixture(weights={"a": 0.0})
    assert re.search(r"give at least one task a weight > 0, or drop `weights`", str(info.value))
