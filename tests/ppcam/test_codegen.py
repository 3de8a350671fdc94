"""The Triton kernels compile for real GPUs (sm_90, sm_80) without spills.

The interpreter never runs Triton's code generator; this does, on a CPU-only
machine, in a subprocess with the interpreter off.
"""

from __future__ import annotations

from bench.kernel_resources import TARGETS, module_resources
from ppcam import _triton


def test_every_kernel_compiles_for_sm90_and_sm80_without_spills():
    rows = module_resources("ppcam._triton")
    specs = _triton.codegen_specs()
    assert len(rows) == len(specs) * len(TARGETS)
    for row in rows:
        assert row.registers > 0, row
        assert row.local_bytes == 0 and row.stack_bytes == 0, f"spills: {row}"
        assert row.registers <= 255, row
