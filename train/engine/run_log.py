"""The run log ``<run>/metrics.jsonl``: one JSON record per line (training steps,
validation summaries, timing), appended as the run goes."""

from __future__ import annotations

import json
import os

from _common.atomic import write_text
from train.metrics import finite_or_none


def append_record(path: str, record: dict) -> None:
    """Append ``record`` as one line (NaN written as null)."""
    with open(path, "a") as f:
        f.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")


def truncate_after(path: str, step: int) -> None:
    """Drop the records past ``step`` (a resumed run recomputes them)."""
    with open(path) as f:
        keep = [line for line in f if json.loads(line).get("step", 0) <= step]
    write_text(path, "".join(keep))


def read_metrics(path: str) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (empty if the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
