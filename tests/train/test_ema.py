"""The weight average: it follows its formula, stays inside the values it has seen,
swaps in and out without loss, and is what a run with ``ema_decay`` delivers."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from tests.train.conftest import tiny_config
from train.data.cache import load_data
from train.engine.checkpoint import read_info
from train.engine.config import TrainConfig
from train.engine.ema import PREFIX, WeightAverage, ema_factor
from train.engine.run import Run
from train.eval.results import delivered_weights


def _module(values: list[float]) -> torch.nn.Module:
    """A module with one float64 parameter vector and BatchNorm's integer counter."""
    module = torch.nn.Module()
    module.weight = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    module.register_buffer("count", torch.zeros((), dtype=torch.long))
    return module


values = st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2)


@settings(max_examples=60, deadline=None)
@given(decay=st.floats(0.0, 0.999), states=st.lists(values, min_size=1, max_size=12))
def test_the_average_follows_its_formula_and_stays_in_the_range_seen(decay, states):
    module = _module([0.0, 0.0])
    average = WeightAverage(module, decay)
    expected = [0.0, 0.0]
    for step, state in enumerate(states, start=1):
        with torch.no_grad():
            module.weight.copy_(torch.tensor(state, dtype=torch.float64))
        module.count.fill_(step)
        average.update(module, step)
        d = min(decay, step / (step + 9))
        expected = [d * e + (1 - d) * x for e, x in zip(expected, state)]
    got = average.state["weight"].tolist()
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    for i in range(2):  # a convex combination of the start (0) and the states seen
        seen = [0.0] + [s[i] for s in states]
        assert min(seen) - 1e-9 <= got[i] <= max(seen) + 1e-9
    assert int(average.state["count"]) == len(states)  # integers are copied, not averaged


def test_the_first_step_is_taken_almost_whole_and_late_ones_at_the_decay():
    assert ema_factor(0.99, 1) == pytest.approx(0.1)
    assert ema_factor(0.99, 10_000) == 0.99
    assert ema_factor(0.0, 5) == 0.0  # decay 0: the average is the last state
    with pytest.raises(ValueError, match="step must be >= 1"):
        ema_factor(0.9, 0)
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        WeightAverage(_module([1.0, 2.0]), 1.0)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        TrainConfig.of(ema_decay=-0.1).validate()


def test_swapped_in_restores_the_raw_state_even_on_error():
    module = _module([1.0, 2.0])
    average = WeightAverage(module, 0.5)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([3.0, 4.0], dtype=torch.float64))
    average.update(module, 5)  # d = min(0.5, 5/14) = 5/14
    with average.swapped_in(module) as inside:
        assert inside.weight.tolist() == pytest.approx([1 + 2 * 9 / 14, 2 + 2 * 9 / 14])
    assert module.weight.tolist() == [3.0, 4.0]
    with pytest.raises(RuntimeError, match="inside"), average.swapped_in(module):
        raise RuntimeError("inside")
    assert module.weight.tolist() == [3.0, 4.0]


def test_loading_an_incomplete_average_is_refused():
    average = WeightAverage(_module([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match="no complete weight average"):
        average.load({PREFIX + "weight": torch.zeros(2)}, "x.safetensors")


def test_a_run_with_ema_delivers_the_average_and_keeps_the_raw_weights(data_root):
    cfg = tiny_config(data_root, name="ema", steps=3, ema_decay=0.5, lr=1e-2)
    data = load_data(cfg.data, cfg.run.out_dir, progress=False)
    run = Run(cfg, progress=False)
    run.train(data)
    folder = os.path.join(cfg.run.out_dir, cfg.run.name)
    final = load_file(os.path.join(folder, "final.safetensors"))
    last = load_file(os.path.join(folder, "last.safetensors"))
    assert read_info(os.path.join(folder, "final.safetensors"))["extra"]["weights"] == "ema"
    raw = run.system.state_dict()
    moved = 0
    for name, value in run.ema.state.items():
        assert torch.equal(final["model." + name], value), name
        assert torch.equal(last["model." + name], raw[name]), name
        assert torch.equal(last[PREFIX + name], value), name
        moved += int(not torch.equal(value, raw[name]))
    assert moved > 0  # the average is not the raw weights
    plain = tiny_config(data_root, name="no-ema", steps=1, ema_decay=0.0)
    Run(plain, progress=False).train(data)
    plain_final = load_file(os.path.join(plain.run.out_dir, plain.run.name, "final.safetensors"))
    assert not any(k.startswith(PREFIX) for k in plain_final)
    extra = read_info(os.path.join(plain.run.out_dir, plain.run.name, "final.safetensors"))["extra"]
    assert extra["weights"] == "raw" and "ema_decay" not in extra
    assert extra["trained_on"]["kind"] == "synthetic"  # train.engine.provenance

    # the report's setup table names the weights each evaluated checkpoint holds
    def weights(path):
        return delivered_weights(SimpleNamespace(checkpoint=path))

    assert weights(os.path.join(folder, "final.safetensors")) == "ema 0.5"
    assert weights(os.path.join(folder, "last.safetensors")) == "raw"
    assert weights(os.path.join(plain.run.out_dir, plain.run.name, "final.safetensors")) == "raw"
