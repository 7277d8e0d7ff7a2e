"""The package's layers, read from the source with ``ast``: every module of ``src/kan`` imports only
its own layer and the layers it sits on (every import counts: in functions, in ``if TYPE_CHECKING``
blocks), and no function imports a ``kan`` module, which would hide an edge; only third-party
dependencies that are slow or optional to import may be deferred into functions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PACKAGES = {  # package (or module) -> its layer; the other modules of kan are the library
    "kan.files": "files",
    "kan.records": "records",
    "kan.data": "data",
    "kan.science": "science",
    "kan.experiments": "experiments",
    "kan.reporting": "reporting",
    "kan.pipeline": "pipeline",
    "kan.__main__": "pipeline",
}
BELOW = {  # layer -> the layers it sits on (it may import those and itself, nothing else)
    "files": set(),  # folders written whole or not at all, file digests
    "records": {"files"},  # on-disk formats: run files, ids, provenance, science outputs, published records
    "data": {"files"},  # the data families
    "library": {"files", "data"},  # the math: layers, models, training, pruning, symbolic fits, plots
    "science": {"files", "records", "data", "library"},
    "experiments": {"files", "records", "data", "library"},
    "reporting": {"files", "records", "library"},
    "pipeline": {"files", "records", "data", "library", "science", "experiments", "reporting"},
}


def module_name(path: Path, src: Path) -> str:
    """``src/kan/records/ids.py`` -> ``kan.records.ids``; a package's ``__init__`` is the package."""
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer of a ``kan`` module: that of its package, else the library."""
    return next((name for package, name in PACKAGES.items() if module == package or module.startswith(package + ".")),
                "library")


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The modules an import statement of ``module`` names (``from a import b``: ``a.b`` when that
    is a module of ours, else ``a``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
    yield from dict.fromkeys(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names)


def imports(src: Path) -> Iterator[tuple[str, int, str, bool]]:
    """``(module, line, imported kan module, inside a function)`` for every import of a ``kan``
    module in the modules under ``src/kan``."""
    paths = sorted((src / "kan").rglob("*.py"))
    known = {module_name(path, src) for path in paths}
    for path in paths:
        module, tree = module_name(path, src), ast.parse(path.read_text(encoding="utf-8"), str(path))
        deferred = {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, module, path.name == "__init__.py", known):
                    if target == "kan" or target.startswith("kan."):
                        yield module, node.lineno, target, id(node) in deferred


def upward_imports(src: Path) -> list[str]:
    """Every import of a layer that its module does not sit on, as a sentence."""
    found = []
    for module, line, target, _ in imports(src):
        own, theirs = layer(module), layer(target)
        if theirs != own and theirs not in BELOW[own]:
            allowed = ", ".join(sorted(BELOW[own] | {own}))
            found.append(f"{module} (line {line}) imports {target}: {own} may import only {allowed}, not {theirs}")
    return found


def deferred_imports(src: Path) -> list[str]:
    """Every import of a ``kan`` module inside a function, as a sentence."""
    return [f"{module} (line {line}) imports {target} inside a function: move it to the top of the module"
            for module, line, target, deferred in imports(src) if deferred]


def test_every_package_of_kan_has_a_layer():
    packages = {f"kan.{path.parent.name}" for path in (SRC / "kan").glob("*/__init__.py")}
    assert packages <= set(PACKAGES), f"give these packages a layer in PACKAGES: {sorted(packages - set(PACKAGES))}"


def test_no_module_imports_a_layer_above_its_own():
    found = upward_imports(SRC)
    assert not found, "\n".join(found)


def test_no_function_imports_a_kan_module():
    found = deferred_imports(SRC)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source, problem", [
    ("from kan.pipeline import cli\n", "kan.records.formats (line 1) imports kan.pipeline.cli: records may import only "
                                       "files, records, not pipeline"),
    ("from ..experiments.sweep import expand\n", "imports kan.experiments.sweep: records may import only files, records"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kan.models\n", "imports kan.models: records"),
    ("def f():\n    from kan.records import ids\n", "kan.records.formats (line 2) imports kan.records.ids inside a function"),
])
def test_the_checks_name_the_module_and_the_import(tmp_path, source, problem):
    for name in ("kan", "kan/records", "kan/pipeline", "kan/experiments"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    for name in ("kan/models.py", "kan/records/ids.py", "kan/pipeline/cli.py", "kan/experiments/sweep.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "kan/records/formats.py").write_text(source)
    found = upward_imports(tmp_path) + deferred_imports(tmp_path)
    assert any(problem in sentence for sentence in found), found
