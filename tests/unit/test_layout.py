"""The package's layering, as static import rules over every file under ``ytrec_lib/``.

Each rule names the files it governs and the modules they must not import; the checker reads the
source with :mod:`ast` (nothing is imported), resolves relative imports, and counts
``from a import b`` as importing both ``a`` and ``a.b`` (``b`` may be a module). Imports under
``if TYPE_CHECKING:`` load nothing and are ignored. A rule either forbids an import anywhere in the
file or only at module level (an import inside a function runs only when it is called).

The runtime counterpart of the serving rule is ``test_serving_imports_no_torch`` in test_serving.py.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ytrec_lib

PACKAGE = Path(ytrec_lib.__file__).parent
FILES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))
"""Every source file of the package, as paths relative to ``ytrec_lib/`` (``models/ranking.py``)."""


@dataclass(frozen=True)
class Imported:
    name: str          # absolute module name, e.g. "ytrec_lib.data.datasets"
    line: int
    module_level: bool  # False inside a function body


def module_name(rel: str) -> str:
    """``models/ranking.py`` -> ``ytrec_lib.models.ranking`` (``data/__init__.py`` -> ``ytrec_lib.data``)."""
    parts = ["ytrec_lib", *rel[: -len(".py")].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(source: str, rel: str) -> Iterator[Imported]:
    """Every import of the file ``rel`` (relative to ``ytrec_lib/``) whose text is ``source``."""
    package = module_name(rel) if rel.endswith("__init__.py") else module_name(rel).rpartition(".")[0]

    def visit(node: ast.AST, module_level: bool) -> Iterator[Imported]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(alias.name, node.lineno, module_level)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield Imported(base, node.lineno, module_level)
            for alias in node.names:
                yield Imported(f"{base}.{alias.name}", node.lineno, module_level)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child, module_level)
        else:
            inner = module_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                yield from visit(child, inner)

    yield from visit(ast.parse(source), True)


@dataclass(frozen=True)
class Rule:
    """Files for which ``governs(rel)`` holds must not import any of ``forbidden`` (or a submodule);
    with ``module_level_only``, imports inside functions are allowed."""

    name: str
    governs: Callable[[str], bool]
    forbidden: tuple[str, ...]
    module_level_only: bool = False

    def violations(self, source: str, rel: str) -> list[str]:
        if not self.governs(rel):
            return []
        return [f"{rel}:{imp.line} imports {imp.name}" for imp in imports(source, rel)
                if (imp.module_level or not self.module_level_only)
                and any(imp.name == f or imp.name.startswith(f + ".") for f in self.forbidden)]


def under(*places: str) -> Callable[[str], bool]:
    """Files in any of ``places``: folders (``"models"``) or single files (``"metrics.py"``)."""
    return lambda rel: any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in places)


LAYERS_BELOW_PIPELINE = ("data", "models", "serving", "features.py", "train.py", "metrics.py")
"""What :mod:`ytrec_lib.pipeline` (data -> trained models -> serving) is built from; none imports it."""

DATA_LOADING = tuple(f"ytrec_lib.data.{m}" for m in ("datasets", "cache", "download", "real", "kuairand",
                                                      "movielens", "movielens100k"))

RULES = {
    "plotting": Rule("only plots.py and widgets.py import matplotlib or ipywidgets",
                     lambda rel: rel not in ("plots.py", "widgets.py"), ("matplotlib", "ipywidgets")),
    "serving": Rule("serving/ imports no torch at module level", under("serving"), ("torch",),
                    module_level_only=True),
    "models": Rule("models/ does not load data (the datasets, their cache, downloads, real data)",
                   under("models"), DATA_LOADING),
    "trainer": Rule("models/ does not import the trainer (pure: arrays and configs in, models out)",
                    under("models"), ("ytrec_lib.train",)),
    "pipeline": Rule("the layers below the pipeline do not import it", under(*LAYERS_BELOW_PIPELINE),
                     ("ytrec_lib.pipeline",)),
    "course": Rule("only course/ and __main__.py import the course",
                   lambda rel: not under("course", "__main__.py")(rel), ("ytrec_lib.course",)),
}

@functools.cache
def _source(rel: str) -> str:
    return (PACKAGE / rel).read_text(encoding="utf-8")


@pytest.mark.parametrize("key", list(RULES))
def test_rule_holds_for_every_file(key):
    rule = RULES[key]
    bad = [v for rel in FILES for v in rule.violations(_source(rel), rel)]
    assert not bad, f"{rule.name}: {bad}"


# ----------------------------------------------------------------------------- the rules can fail
VIOLATIONS = {
    "plotting": ("report.py", "def f():\n    import matplotlib.pyplot as plt\n"),
    "serving": ("serving/server.py", "try:\n    import torch\nexcept ImportError:\n    torch = None\n"),
    "models": ("models/ranking.py", "def load():\n    from ..data import datasets\n"),
    "trainer": ("models/ranking.py", "def train_scorer():\n    from ..train import TrainConfig, fit\n"),
    "pipeline": ("serving/system.py", "from ytrec_lib import pipeline\n"),
    "course": ("plots.py", "from ytrec_lib.course import CHAPTERS\n"),
}


@pytest.mark.parametrize("key", RULES)
def test_each_rule_catches_a_violation(key):
    rel, source = VIOLATIONS[key]
    assert RULES[key].violations(source, rel), f"rule {key!r} missed: {source!r} in {rel}"


def test_what_the_rules_allow():
    serving, models = RULES["serving"], RULES["models"]
    assert not serving.violations("def f():\n    import torch\n", "serving/system.py")  # lazy: allowed
    assert not serving.violations("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
                                  "serving/system.py")
    assert not models.violations("from ytrec_lib.data.splits import history\n", "models/ranking.py")
    assert not RULES["trainer"].violations("from ytrec_lib.train import fit\n", "pipeline.py")
    assert RULES["trainer"].violations("from ytrec_lib import train\n", "models/candidate.py")
    assert not RULES["plotting"].violations("import matplotlib\n", "plots.py")
    assert not RULES["course"].violations("from ytrec_lib.course.cli import main\n", "__main__.py")


def test_relative_imports_resolve_to_absolute_names():
    source = "from . import real\nfrom .cache import load_json\nfrom .. import metrics\n"
    got = {i.name for i in imports(source, "data/datasets.py")}
    assert {"ytrec_lib.data.real", "ytrec_lib.data.cache", "ytrec_lib.metrics"} <= got
    in_init = {i.name for i in imports("from . import datasets\n", "data/__init__.py")}
    assert "ytrec_lib.data.datasets" in in_init
