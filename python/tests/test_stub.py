"""The extension module's stub (strata_llm/_strata.pyi) names exactly what the module defines."""

from __future__ import annotations

import ast
import pathlib

import strata_llm
from strata_llm import _strata


def stub_names() -> dict[str, set[str]]:
    """Top-level names -> the names each class defines ("" holds the module's own)."""
    tree = ast.parse((pathlib.Path(strata_llm.__file__).parent / "_strata.pyi").read_text())
    names: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[""].add(node.name)
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and n.name != "__init__"
            }
        elif isinstance(node, ast.FunctionDef):
            names[""].add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names[""].add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module is None:
            names[""].update(a.asname or a.name for a in node.names)
    return names


def module_names() -> dict[str, set[str]]:
    public = {n for n in dir(_strata) if not n.startswith("_")} | {"__version__"}
    names: dict[str, set[str]] = {"": public}
    for n in public:
        obj = getattr(_strata, n)
        if isinstance(obj, type):
            names[n] = {m for m in vars(obj) if not m.startswith("_")}
    return names


def test_the_stub_matches_the_module():
    assert stub_names() == module_names()


def test_the_package_is_typed():
    assert (pathlib.Path(strata_llm.__file__).parent / "py.typed").exists()
