"""tools/cpu_rounding.py: its comparisons count what differs, and the tool runs end to
end on the smoke preset (native against AVX2 kernels)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from tools.cpu_rounding import (
    data_differences,
    first_difference,
    has_avx2,
    main,
    step_losses,
    weight_difference,
)

losses = st.lists(st.floats(0, 100), min_size=1, max_size=20)


@given(values=losses, at=st.integers(0, 19), delta=st.floats(1e-6, 1.0))
def test_first_difference_is_the_first_changed_step(values, at, delta):
    assert first_difference(values, list(values)) is None
    if at < len(values):
        changed = list(values)
        changed[at] += delta
        assert first_difference(values, changed) == at + 1


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.5, 2.0), seed=st.integers(0, 2**16))
def test_weight_difference_is_relative(tmp_path_factory, scale, seed):
    folder = tmp_path_factory.mktemp("w")
    gen = torch.Generator().manual_seed(seed)
    w = {"model.a": torch.randn(5, generator=gen), "model.b": torch.randn(2, 3, generator=gen)}
    extra = {"optim.0.exp_avg": torch.ones(1), "model.count": torch.zeros((), dtype=torch.long)}
    save_file({**w, **extra}, str(folder / "a.safetensors"))
    save_file({**{k: v * scale for k, v in w.items()}, **extra}, str(folder / "b.safetensors"))
    got = weight_difference(str(folder / "a.safetensors"), str(folder / "b.safetensors"))
    assert got == pytest.approx(abs(scale - 1.0), abs=1e-6)  # float32 scaling
    assert weight_difference(str(folder / "a.safetensors"), str(folder / "a.safetensors")) == 0


def test_data_differences_count_entries_and_refuse_mismatches(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    x = torch.arange(6, dtype=torch.float32)
    save_file({"x": x, "i": torch.zeros(3, dtype=torch.uint8)}, str(a / "s.safetensors"))
    y = x.clone()
    y[2] += 0.25
    y[5] -= 1.0
    save_file({"x": y, "i": torch.zeros(3, dtype=torch.uint8)}, str(b / "s.safetensors"))
    rows = {r["tensor"]: r for r in data_differences(str(a), str(b))}
    assert (rows["x"]["differ"], rows["x"]["of"], rows["x"]["max_abs"]) == (2, 6, 1.0)
    assert rows["i"]["differ"] == 0
    save_file({"x": x}, str(a / "t.safetensors"))
    with pytest.raises(FileNotFoundError, match="t.safetensors: missing"):
        data_differences(str(a), str(b))


def test_step_losses_skip_other_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": 1, "loss": 2.5}, {"step": 1, "kind": "val"}, {"step": 2, "loss": 2.0}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert step_losses(str(path)) == [2.5, 2.0]


@pytest.mark.skipif(not has_avx2(), reason="needs a CPU with AVX2")
def test_the_tool_runs_end_to_end_on_the_smoke_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRAST_COMPILE", "0")  # seconds, not a compile per variant
    text = main(["--preset", "smoke", "--steps", "2", "--out-dir", str(tmp_path)])
    assert "First step whose loss differs" in text and "| 2 |" in text
    assert os.path.exists(tmp_path / "divergence.png")
    assert os.path.exists(tmp_path / "native" / "pretrain" / "final.safetensors")
    with pytest.raises(SystemExit):
        main(["--steps", "0", "--out-dir", str(tmp_path)])
