"""Shared fixtures, and the session's torch settings; the tiny models and helpers live in ``tests/common.py``.

The names other test files import from here (``tiny_bert``, ``training_args``, ``ARCHITECTURES``,
...) are re-exported from ``tests/common.py``.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub, which reads HF_HUB_OFFLINE once at import: tests never
# touch the network (a lookup would wait for a connection timeout instead).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Subprocesses (torchrun, the trust_remote_code check) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

# One intra-op thread: the models are tiny, so threads only add synchronisation, and on a busy
# 2-core machine (tests running side by side) two OpenMP threads made a 10-step Trainer run take
# ~10 s instead of ~0.3 s.
torch.set_num_threads(1)

from .common import (  # noqa: E402  (after the environment is set)
    MODELS,
    SEQ,
    VOCAB,
    ContractTester,
    tiny_bert,
    tiny_dataset,
    tiny_distilbert,
    tiny_electra,
    tiny_roberta,
    training_args,
)
from .hub_server import local_hub  # noqa: E402, F401  (the fixture: a local Hub for every test file)

# The four architectures the older per-feature tests run on (test_rank.py, test_trainer.py); the
# contract suite runs on all of MODELS.
ARCHITECTURES = {name: MODELS[name].build for name in ("bert", "roberta", "distilbert", "electra")}

__all__ = [
    "ARCHITECTURES",
    "SEQ",
    "VOCAB",
    "tiny_bert",
    "tiny_dataset",
    "tiny_distilbert",
    "tiny_electra",
    "tiny_roberta",
    "training_args",
]


@pytest.fixture
def dataset() -> Dataset:
    return tiny_dataset()


@pytest.fixture(scope="session")
def contract_tester(tmp_path_factory) -> ContractTester:
    """One per session: its trained runs and exports are shared by every test that reads them
    (the contract suite, and the log and report checks of the per-feature tests)."""
    return ContractTester(tmp_path_factory.mktemp("contract"))
