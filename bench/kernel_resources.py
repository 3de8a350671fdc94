"""Compile Triton kernels for a GPU target without a GPU and read their resource use.

``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` runs the
whole code generator (TTIR -> TTGIR -> LLVM -> PTX -> cubin via ptxas) on a
CPU-only machine, and the wheel's ``cuobjdump -res-usage`` reads registers,
stack, shared and local memory (spills) from the cubin. The interpreter
(``TRITON_INTERPRET=1``) never runs the code generator, so this is how tests
catch kernels that would not compile on the real device.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping

#: Targets checked by the tests and reported by the benches: H100, A100.
TARGETS = {"sm_90": 90, "sm_80": 80}


@dataclasses.dataclass(frozen=True)
class KernelResources:
    """What one compiled kernel uses per thread / per block on its target."""

    kernel: str
    target: str
    num_warps: int
    registers: int
    stack_bytes: int
    shared_bytes: int
    local_bytes: int

    @property
    def spills(self) -> bool:
        """True when the kernel uses local memory (register spills or local arrays)."""
        return self.local_bytes > 0 or self.stack_bytes > 0


def _unwrap(fn):
    """The JITFunction behind a possible ``triton.autotune``/``heuristics`` wrapper."""
    while not hasattr(fn, "arg_names") and hasattr(fn, "fn"):
        fn = fn.fn
    if type(fn).__name__ == "InterpretedFunction":
        raise RuntimeError(
            "kernels defined under TRITON_INTERPRET=1 cannot be compiled for a GPU target; "
            "use module_resources(), which compiles in a subprocess without the interpreter"
        )
    return fn


def cuobjdump_path() -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(path):
        raise FileNotFoundError(f"cuobjdump not found in the triton wheel at {path}")
    return path


def compile_kernel(
    fn,
    signature: Mapping[str, str],
    constexprs: Mapping[str, object],
    *,
    capability: int = 90,
    num_warps: int = 4,
):
    """Compile ``fn`` for ``cuda:sm_<capability>`` and return the compiled kernel.

    ``signature`` maps every argument name to a Triton type (``"*fp32"``,
    ``"i32"``, ``"fp32"``, or ``"constexpr"``); ``constexprs`` gives the value
    of each constexpr argument.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    jit_fn = _unwrap(fn)
    missing = [a for a in jit_fn.arg_names if a not in signature]
    if missing:
        raise ValueError(f"signature lacks arguments {missing} of kernel {jit_fn.__name__}")
    src = ASTSource(fn=jit_fn, signature=dict(signature), constexprs=dict(constexprs))
    return triton.compile(
        src, target=GPUTarget("cuda", capability, 32), options={"num_warps": num_warps}
    )


_RES_RE = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")


def resource_usage(compiled, kernel: str, target: str) -> KernelResources:
    """Run ``cuobjdump -res-usage`` on a compiled kernel's cubin and parse it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(compiled.asm["cubin"])
        out = subprocess.run(
            [cuobjdump_path(), "-res-usage", path], capture_output=True, text=True, check=True
        ).stdout
    match = _RES_RE.search(out)
    if match is None:
        raise RuntimeError(f"could not parse cuobjdump output for {kernel}:\n{out}")
    reg, stack, shared, local = (int(g) for g in match.groups())
    # cuobjdump reports static shared memory only; Triton allocates dynamically.
    shared = max(shared, int(getattr(compiled.metadata, "shared", 0) or 0))
    return KernelResources(
        kernel=kernel,
        target=target,
        num_warps=int(compiled.metadata.num_warps),
        registers=reg,
        stack_bytes=stack,
        shared_bytes=shared,
        local_bytes=local,
    )


def kernel_resources(
    fn,
    signature: Mapping[str, str],
    constexprs: Mapping[str, object],
    *,
    target: str = "sm_90",
    num_warps: int = 4,
    name: str | None = None,
) -> KernelResources:
    """Compile ``fn`` for ``target`` (a key of :data:`TARGETS`) and report its resources."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    compiled = compile_kernel(
        fn, signature, constexprs, capability=TARGETS[target], num_warps=num_warps
    )
    label = name or _unwrap(fn).__name__
    return resource_usage(compiled, label, target)


def format_table(rows: list[KernelResources]) -> str:
    """A markdown table of kernel resources."""
    lines = [
        "| kernel | target | warps | registers | stack B | shared B | local B (spills) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.kernel} | {r.target} | {r.num_warps} | {r.registers} | {r.stack_bytes} "
            f"| {r.shared_bytes} | {r.local_bytes} |"
        )
    return "\n".join(lines)


def specs_resources(specs, targets=tuple(TARGETS)) -> list[KernelResources]:
    """Compile every spec for every target in this process (interpreter must be off).

    A spec is a dict with keys ``name``, ``fn``, ``signature``, ``constexprs``
    and optionally ``num_warps``: what a kernel module's ``codegen_specs()``
    returns.
    """
    rows = []
    for spec in specs:
        for target in targets:
            rows.append(
                kernel_resources(
                    spec["fn"],
                    spec["signature"],
                    spec["constexprs"],
                    target=target,
                    num_warps=spec.get("num_warps", 4),
                    name=spec["name"],
                )
            )
    return rows


def module_resources(
    module: str, targets=tuple(TARGETS), timeout: float = 600
) -> list[KernelResources]:
    """Compile all kernels of ``module`` (its ``codegen_specs()``) for ``targets``.

    Runs in a fresh Python process with ``TRITON_INTERPRET`` unset, because a
    process that imported triton in interpreter mode holds interpreted kernels
    that the code generator cannot take.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "bench.kernel_resources", module, *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the kernels of {module} failed:\n{proc.stderr[-4000:]}")
    return [KernelResources(**row) for row in json.loads(proc.stdout.strip().splitlines()[-1])]


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.kernel_resources MODULE [TARGET ...]``: print a JSON list."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m bench.kernel_resources MODULE [sm_90 sm_80 ...]")
    module, targets = argv[0], tuple(argv[1:]) or tuple(TARGETS)
    specs = importlib.import_module(module).codegen_specs()
    rows = specs_resources(specs, targets)
    print(json.dumps([dataclasses.asdict(r) for r in rows]))


if __name__ == "__main__":
    main()
