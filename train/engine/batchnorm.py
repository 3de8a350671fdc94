"""BatchNorm statistics recomputed for the weights a run delivers ("precise BN").

During training each BatchNorm layer keeps a running mean and variance with momentum
0.1: about the last ten batches, seen by the weights of those steps, not by the final
ones (nor by a weight average, train.engine.ema). After a short run that lag is noise
in every eval-mode prediction. :func:`recalibrate` resets the statistics and
recomputes them as the plain average over given batches, in training mode, with the
weights fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def batchnorm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module`` that tracks running statistics."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def recalibrate(module: nn.Module, batches: int, run_batch: Callable[[int], object]) -> int:
    """Recompute the running statistics of ``module``'s BatchNorm layers over ``batches``
    calls of ``run_batch(k)`` (k = 0 ... batches-1; it runs the forward passes that
    should be seen) in training mode, as the plain average over those batches (momentum
    None). Weights are not touched; momentum and the train/eval mode are put back.
    Returns the number of layers recomputed."""
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    layers = batchnorm_layers(module)
    momenta = [bn.momentum for bn in layers]
    was_training = module.training
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    module.train()
    try:
        for k in range(batches):
            run_batch(k)
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        module.train(was_training)
    return len(layers)
