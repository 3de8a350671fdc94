"""An exponential moving average of a network's weights: the weights a short training
run delivers, less dependent on where the last noisy steps left the raw ones.

After optimizer step ``n`` (1-based) every floating-point entry of the state (the
parameters and the BatchNorm running statistics) moves as

    average <- d_n * average + (1 - d_n) * current,    d_n = min(decay, n / (n + 9)),

so the first steps are taken almost whole (the average does not remember the
initialisation for long) and later ones are averaged over about ``1 / (1 - decay)``
steps. Integer entries (BatchNorm's batch counter) are copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: checkpoint tensor-name prefix of the averaged state
PREFIX = "ema."


def ema_factor(decay: float, step: int) -> float:
    """``d_n`` of the module docstring for optimizer step ``step`` >= 1."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    return min(decay, step / (step + 9.0))


class WeightAverage:
    """The running average of ``module``'s state (``decay`` in [0, 1)), started at its
    current state. Keeps its own tensors; the module is only read (and, inside
    :meth:`swapped_in`, temporarily overwritten)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        """Fold in ``module``'s state after optimizer step ``step`` (1-based)."""
        weight = 1.0 - ema_factor(self.decay, step)
        for name, current in module.state_dict().items():
            average = self.state[name]
            if average.is_floating_point():
                average.lerp_(current.detach(), weight)
            else:
                average.copy_(current)

    @contextlib.contextmanager
    def swapped_in(self, module: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """``module`` with the averaged state loaded; its own state is put back on exit."""
        own = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(self.state)
        try:
            yield module
        finally:
            module.load_state_dict(own)

    @torch.no_grad()
    def capture(self, module: torch.nn.Module) -> None:
        """Take ``module``'s current state as the average (e.g. the average with its
        BatchNorm statistics recomputed while swapped in)."""
        for name, value in module.state_dict().items():
            self.state[name].copy_(value)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The averaged state as checkpoint tensors (names with :data:`PREFIX`)."""
        return {PREFIX + k: v.contiguous().clone() for k, v in self.state.items()}

    def load(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Restore the average from checkpoint ``tensors`` (read from ``source``)."""
        found = {k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        if set(found) != set(self.state):
            missing = sorted(set(self.state) - set(found))[:5]
            raise ValueError(
                f"{source} holds no complete weight average (missing {missing}); it was "
                "saved by a run without ema_decay, or by another network"
            )
        for name, value in found.items():
            self.state[name].copy_(value)
