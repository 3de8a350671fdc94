"""Recomputed BatchNorm statistics: the plain average over the given batches, weights
untouched, and what a run with ``bn_recalibrate`` delivers."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from tests.train.conftest import tiny_config, tiny_data
from train.engine.batchnorm import batchnorm_layers, recalibrate
from train.engine.config import TrainConfig
from train.engine.run import Run


def test_statistics_are_the_plain_average_over_the_batches():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3)).eval()
    net[1].running_mean.fill_(5.0)  # stale statistics from "training"
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k}
    batches = [torch.randn(4, 2, 3, 3) * (k + 1) for k in range(3)]
    assert recalibrate(net, 3, lambda k: net(batches[k])) == 1
    with torch.no_grad():
        outs = [net[0](b) for b in batches]
    means = torch.stack([o.mean((0, 2, 3)) for o in outs])
    variances = torch.stack([o.transpose(0, 1).reshape(3, -1).var(1) for o in outs])
    bn = net[1]
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, variances.mean(0), rtol=1e-5)
    assert int(bn.num_batches_tracked) == 3 and bn.momentum == 0.1 and not net.training
    for key, value in weights.items():
        if "num_batches" not in key:
            assert torch.equal(net.state_dict()[key], value), key
    with pytest.raises(ValueError, match="batches must be >= 1"):
        recalibrate(net, 0, lambda k: None)
    with pytest.raises(ValueError, match="bn_recalibrate must be >= 0"):
        TrainConfig.of(bn_recalibrate=-1).validate()


@pytest.mark.parametrize("ema_decay", [0.0, 0.5])
def test_a_run_delivers_recomputed_statistics_and_the_same_weights(data_root, ema_decay):
    data = tiny_data(data_root)
    runs = {}
    for k in (0, 2):
        cfg = tiny_config(
            data_root, name=f"bn{k}-{ema_decay}", steps=3, bn_recalibrate=k, ema_decay=ema_decay
        )
        run = Run(cfg, progress=False)
        run.train(data)
        runs[k] = load_file(os.path.join(cfg.run.out_dir, cfg.run.name, "final.safetensors"))
        if k:
            layers = batchnorm_layers(run.system)
    buffers = [k for k in runs[0] if k.startswith("model.") and "running_" in k]
    assert buffers and len(buffers) == 2 * len(layers)
    for key in runs[0]:
        if not key.startswith("model."):
            continue
        if "running_" in key:
            assert not torch.equal(runs[0][key], runs[2][key]), key
        elif "num_batches_tracked" in key:
            # the expression encoder and the renderer run twice per step (the cycle)
            twice = key.startswith(("model.model.expression.", "model.renderer."))
            assert int(runs[2][key]) == (4 if twice else 2), key
        else:  # the same training: the same (averaged) weights
            assert torch.equal(runs[0][key], runs[2][key]), key
