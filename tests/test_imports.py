"""The project's import graph: no cycle between first-party modules, and no package
reaching into another package's private modules.

Read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of every module, function-level ones included, relative ones
resolved, kept when it names a first-party module.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("_common", "minirast", "ppcam", "flame", "train", "bench", "tools")
#: packages whose ``_private`` modules are theirs alone (``_common`` is the shared one)
LIBRARIES = ("minirast", "ppcam", "flame")
#: packages that may only use the libraries' public modules
CLIENTS = ("train", "bench", "tools")


def module_files(root: str = ROOT, packages=PACKAGES) -> dict[str, str]:
    """``{dotted module name: path}`` of every ``.py`` file of ``packages``."""
    found = {}
    for package in packages:
        for folder, dirs, files in os.walk(os.path.join(root, package)):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            rel = os.path.relpath(folder, root).split(os.sep)
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                stem = name[:-3]
                parts = rel if stem == "__init__" else [*rel, stem]
                found[".".join(parts)] = os.path.join(folder, name)
    return found


def imported_names(module: str, path: str, is_package: bool) -> list[tuple[str, list[str], bool]]:
    """``(source, names, deferred)`` of every import: ``import a.b`` gives ``("a.b", [])``,
    ``from a import b, c`` gives ``("a", ["b", "c"])`` (relative sources resolved);
    ``deferred``: inside a function, so it runs on call, not on import."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, deferred: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], deferred) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            found.append((source, [alias.name for alias in node.names], deferred))
        inner = deferred or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph(files: dict[str, str], deferred: bool = True) -> dict[str, set[str]]:
    """``{module: first-party modules it imports}`` (``deferred``: with the imports
    inside functions). ``from a import b`` imports the module ``a.b`` when there is
    one, else a name of ``a``."""
    graph = {}
    for module, path in files.items():
        targets = set()
        for source, names, late in imported_names(module, path, path.endswith("__init__.py")):
            if late and not deferred:
                continue
            submodules = {f"{source}.{name}" for name in names} & set(files)
            if len(submodules) < len(names) or not names:
                targets.add(source)
            targets |= submodules
        graph[module] = (targets & set(files)) - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    done, on_path = set(), {}
    for start in sorted(graph):
        if start in done:
            continue
        stack = [(start, iter(sorted(graph.get(start, ()))))]
        on_path[start] = 0
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                del on_path[node]
                done.add(node)
            elif child in on_path:
                path = [n for n, _ in stack]
                return [*path[on_path[child] :], child]
            elif child not in done:
                on_path[child] = len(stack)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def private_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(importer, private module)`` pairs where a client package uses a library's
    ``_private`` module."""
    bad = []
    for module, targets in sorted(graph.items()):
        if module.split(".")[0] not in CLIENTS:
            continue
        for target in sorted(targets):
            parts = target.split(".")
            if parts[0] in LIBRARIES and any(p.startswith("_") for p in parts[1:]):
                bad.append((module, target))
    return bad


def test_the_cycle_finder_finds_cycles_and_accepts_trees():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_relative_imports_resolve_and_private_modules_are_flagged(tmp_path):
    pkg = tmp_path / "train" / "engine"
    pkg.mkdir(parents=True)
    (tmp_path / "train" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from . import run\n")
    (pkg / "run.py").write_text("from ..engine import plots\nfrom ppcam import _validate\n")
    (pkg / "plots.py").write_text("def f():\n    from .run import x\n")
    (tmp_path / "ppcam").mkdir()
    (tmp_path / "ppcam" / "__init__.py").write_text("")
    (tmp_path / "ppcam" / "_validate.py").write_text("")
    graph = import_graph(module_files(str(tmp_path), ("train", "ppcam")))
    assert graph["train.engine"] == {"train.engine.run"}
    assert graph["train.engine.run"] == {"train.engine.plots", "ppcam._validate"}
    assert find_cycle(graph) == ["train.engine.run", "train.engine.plots", "train.engine.run"]
    assert find_cycle(import_graph(module_files(str(tmp_path), ("train",)), deferred=False)) is None
    assert private_imports(graph) == [("train.engine.run", "ppcam._validate")]


@pytest.fixture(scope="module")
def project_graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def test_the_project_has_no_import_cycle(project_graph):
    """Imports inside functions included: the import-time graph is part of this one,
    so it has no cycle either."""
    assert len(project_graph) > 50, sorted(project_graph)
    cycle = find_cycle(project_graph)
    if cycle is not None:
        print("import cycle: " + " -> ".join(cycle))
    assert cycle is None, " -> ".join(cycle)


def test_no_client_imports_a_private_library_module(project_graph):
    bad = private_imports(project_graph)
    for importer, private in bad:
        print(f"{importer} imports {private}")
    assert bad == []


#: the parts of ``train/``, bottom first (docs/design.md, "The train package"): each part
#: imports only parts before it, deferred imports included. ``units`` and ``metrics``
#: are single modules every part may use.
TRAIN_STACK = (
    "units",
    "options",
    "metrics",
    "faces",
    "render",
    "data",
    "models",
    "engine",
    "fit",
    "infer",
    "eval",
)
#: the commands (``python -m train.<name>``): top-level modules and parts' ``__main__``;
#: they may import any part, and nothing imports them
TRAIN_COMMANDS = ("finetune", "pretrain", "evaluate", "landmarks", "import_smirk")


def train_part(module: str) -> str | None:
    """The part of ``train/`` a module belongs to, ``"command"``, or None (``train``
    itself, or a module outside ``train``)."""
    parts = module.split(".")
    if parts[0] != "train" or len(parts) == 1:
        return None
    if parts[1] in TRAIN_COMMANDS or parts[-1] == "__main__":
        return "command"
    return parts[1]


def stack_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import inside ``train/`` that goes sideways or up the stack, or into a
    command, or comes from a module in no known part."""
    bad = []
    for module, targets in sorted(graph.items()):
        source = train_part(module)
        if source is None:
            continue
        if source != "command" and source not in TRAIN_STACK:
            bad.append(f"{module} is in no part of TRAIN_STACK")
            continue
        for target in sorted(targets):
            part = train_part(target)
            if part is None or part == source:
                continue
            if part == "command":
                bad.append(f"{module} imports the command {target}")
            elif source != "command" and TRAIN_STACK.index(part) > TRAIN_STACK.index(source):
                bad.append(f"{module} ({source}) imports {target} ({part}), above it")
    return bad


def test_the_stack_check_catches_upward_sideways_and_command_imports():
    graph = {
        "train.data.cache": {"train.faces.images", "train.engine.config"},
        "train.engine.run": {"train.data.cache", "train.finetune"},
        "train.fit.__main__": {"train.eval.report"},
        "train.eval.report": {"train.fit.fitting", "train.eval.tables"},
        "train.loose": set(),
    }
    assert stack_violations(graph) == [
        "train.data.cache (data) imports train.engine.config (engine), above it",
        "train.engine.run imports the command train.finetune",
        "train.loose is in no part of TRAIN_STACK",
    ]


def test_train_is_a_strict_stack(project_graph):
    """No two parts of train/ import each other: every import goes down the stack."""
    assert any(m.startswith("train.eval.") for m in project_graph)
    bad = stack_violations(project_graph)
    assert bad == [], "\n".join(bad)


def test_no_two_train_modules_share_a_name():
    names: dict[str, list[str]] = {}
    for module in module_files(packages=("train",)):
        stem = module.rsplit(".", 1)[-1]
        if module.count(".") and stem not in ("__main__",) and module not in names.get(stem, []):
            is_package = os.path.isdir(os.path.join(ROOT, *module.split(".")))
            if not is_package:
                names.setdefault(stem, []).append(module)
    assert len(names) > 40
    shared = {stem: found for stem, found in names.items() if len(found) > 1}
    assert shared == {}
