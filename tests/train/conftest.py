"""Tiny configurations and data shared by the training tests (32 px, a few samples)."""

from __future__ import annotations

import pytest
import torch

from train.data.cache import load_data
from train.engine.config import TrainConfig


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    values = dict(
        name="tiny",
        preset="smoke",
        out_dir=str(tmp_path),
        image_size=32,
        n_train=8,
        n_val=4,
        n_test=4,
        steps=4,
        pretrain_steps=2,
        batch_size=4,
        width=0.25,
        n_shape=10,
        n_expr=10,
        renderer_channels=4,
        eval_every=100,
        checkpoint_every=1,
        bn_recalibrate=2,
    )
    values.update(overrides)
    return TrainConfig.of(**values).validate()


def tiny_cli_args(out_dir, steps: int = 2) -> list[str]:
    """The command-line twin of :func:`tiny_config` for the entry points."""
    return [
        "--preset", "smoke", "--out-dir", str(out_dir), "--image-size", "32",
        "--n-train", "8", "--n-val", "4", "--n-test", "4", "--steps", str(steps),
        "--pretrain-steps", str(steps), "--batch-size", "4", "--n-shape", "10",
        "--n-expr", "10",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """One data cache for the whole session: every tiny config renders the same samples."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: one intra-op thread is as fast, and far faster on a shared, loaded CPU
    (two threads spin-waiting on each other made these tests ~10x slower there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_data(tmp_path, **overrides) -> dict:
    """The data of :func:`tiny_config` (rendered once per folder, then cached)."""
    cfg = tiny_config(tmp_path, **overrides)
    return load_data(cfg.data, cfg.run.out_dir, progress=False)
