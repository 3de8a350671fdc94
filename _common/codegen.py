"""Kernel configurations for GPU code-generation checks, derived from the kernels.

A check compiles each configuration with ``triton.compile`` (see
``bench/kernel_resources.py``), which needs a Triton type for every argument.
Here the signature is read off the kernel itself: its argument names
(``fn.arg_names``), looked up in one per-package map from argument name to
Triton type (``"*fp32"``, ``"i32"``, ...), with the arguments given a value in
``constexprs`` marked ``"constexpr"``. A new or renamed kernel argument thus
needs one entry in that map, never a hand-written signature.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence


def kernel_spec(
    name: str,
    fn,
    arg_types: Mapping[str, str],
    constexprs: Mapping[str, object],
    *,
    num_warps: int,
) -> dict:
    """One compile configuration of the Triton kernel ``fn`` (a ``@triton.jit`` function).

    Returns the dict ``bench.kernel_resources.specs_resources`` takes: ``name``,
    ``fn``, ``signature`` (every argument of ``fn`` in order: ``"constexpr"`` when it
    has a value in ``constexprs``, else ``arg_types[argument name]``), ``constexprs``
    and ``num_warps``.
    """
    signature = {}
    for arg in fn.arg_names:
        if arg in constexprs:
            signature[arg] = "constexpr"
        elif arg in arg_types:
            signature[arg] = arg_types[arg]
        else:
            raise KeyError(
                f"argument {arg!r} of kernel {fn.__name__} has neither a Triton type in "
                "the package's argument map nor a constexpr value"
            )
    unknown = sorted(set(constexprs) - set(fn.arg_names))
    if unknown:
        raise KeyError(f"constexprs {unknown} are not arguments of kernel {fn.__name__}")
    return {
        "name": name,
        "fn": fn,
        "signature": signature,
        "constexprs": dict(constexprs),
        "num_warps": num_warps,
    }


def gather_specs(package: str, modules: Sequence[str]) -> list[dict]:
    """The configurations of every kernel module ``<package>.<name>`` in ``modules``
    (each with its own ``codegen_specs()``), in that order: what a ``_triton``
    package's ``codegen_specs()`` returns."""
    specs = []
    for name in modules:
        specs += importlib.import_module(f"{package}.{name}").codegen_specs()
    return specs
