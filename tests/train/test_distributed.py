"""The training command under torchrun: two CPU processes (gloo) stay in lockstep."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.train.conftest import tiny_cli_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_cpu_ranks_keep_identical_parameters(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "train.pretrain",
        *tiny_cli_args(tmp_path, steps=3),
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "pretrain" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    checks = [r for r in records if r.get("kind") == "ddp_check"]
    assert len(checks) == 1 and checks[0]["world"] == 2
    assert checks[0]["max_param_diff"] == 0.0
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
