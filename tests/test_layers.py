"""The package's layers: no import cycle in ``src/vlprompt``, and the import contract of ``pyproject.toml``
(``[tool.importlinter]``, checked by ``lint-imports`` in ``.ci/run``) holds on the code and fails on a violation."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_names(src: Path, package: str) -> Dict[str, Path]:
    """Every module of ``package`` under ``src`` (a package is its ``__init__``)."""
    names = {}
    for path in (src / package).rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports(src: Path, package: str) -> Dict[str, Set[str]]:
    """The modules of ``package`` each module imports, at module level or inside a function alike
    (``from a import b`` is ``a.b`` when that is a module, else ``a``)."""
    modules = module_names(src, package)
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One import cycle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(module: str) -> Optional[List[str]]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def write_package(root: Path, files: Dict[str, str]) -> None:
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)


def test_no_import_cycle_in_the_package():
    assert find_cycle(imports(SRC, "vlprompt")) is None


def test_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from .c import g\n",
            "pkg/c.py": "import pkg.a\n\ndef g():\n    pass\n",
            "pkg/d.py": "from pkg.a import b\n",
        },
    )
    graph = imports(tmp_path, "pkg")
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.d"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


def lint_imports(src: Path, config: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(**eval(sys.argv[1])))"
    options = repr({"config_filename": str(config), "no_cache": True, "no_logo": True})
    return subprocess.run(
        [sys.executable, "-c", code, options], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def copy_sources(tmp_path: Path) -> Path:
    """The package's Python files (not its data assets) under ``tmp_path / "src"``."""
    for path in (SRC / "vlprompt").rglob("*.py"):
        target = tmp_path / "src" / path.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return tmp_path / "src"


def test_import_contract_holds(tmp_path):
    result = lint_imports(SRC, ROOT / "pyproject.toml", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("sweep/executors.py", "from vlprompt.cli import main", "only the command line imports the command line"),
        ("analysis/corruption.py", "from vlprompt.api import evaluate", "do not import the public facade"),
        ("engine/trainer.py", "from vlprompt.pipeline.records import Results", "package layers"),
    ],
)
def test_import_contract_fails_on_a_violation(tmp_path, module, line, contract):
    src = copy_sources(tmp_path)
    path = src / "vlprompt" / module
    path.write_text(path.read_text() + f"\n\ndef _violation():\n    {line}\n")
    result = lint_imports(src, ROOT / "pyproject.toml", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), result.stdout
