"""Two processes (torchrun, gloo on CPU): pruning stays identical across processes, one export."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "distributed_prune.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("method", ["rpp", "movement", "rank"])
def test_two_processes_end_with_identical_models_and_one_export(tmp_path, method):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        SCRIPT,
        method,
        str(tmp_path),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # DDP keeps parameters in sync; the method's own tensors (scores, gates) must be averaged by
    # the method itself, or the two processes drift apart and prune different weights.
    assert ranks[0]["params"] == ranks[1]["params"]
    assert [r["wrote_export"] for r in ranks] == [True, False]
    assert (tmp_path / "export" / "hf_prune_export.json").is_file()
    if method != "rank":
        assert ranks[0]["saved_sparsity"] == pytest.approx(0.7, abs=1e-3)
