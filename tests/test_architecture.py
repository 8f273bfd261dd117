"""The house rules of the package, checked on its source (an AST scan, nothing imported).

- no import circle between the package's modules (function-level imports count: they are
  circles deferred, not removed; imports under ``if TYPE_CHECKING:`` do not run and do not count);
- nothing from ``pipeline.py`` down (illum, segment, measure, config, errors) imports dask,
  distributed, zarr, the store or the run;
- only ``cpfeatures/store/`` reads a store's on-disk layout: no other module subscripts or walks
  a ``.root`` it does not own, or names a ``zarr.json`` file;
- no private name (``_x``, or anything from a ``_module``) is imported across subpackages;
- the package root holds at most 6 modules, and its docstring is a map naming every subpackage.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "cpfeatures"
#: What sits below the pipeline: plain functions of arrays and settings.
LOWER = ("cpfeatures.pipeline", "cpfeatures.illum", "cpfeatures.config", "cpfeatures.errors", "cpfeatures.segment",
         "cpfeatures.measure")
HEAVY = ("dask", "distributed", "zarr", "cpfeatures.store", "cpfeatures.run")




def _modules_of(pkg: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(pkg.rglob("*.py")):
        parts = path.relative_to(pkg.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _imports(name: str, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of the module ``name`` that runs."""
    path = modules[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            # ``from . import fs``: the submodule itself is what is imported
            subs = [n for n in names if f"{target}.{n}" in modules]
            if subs:
                out += [(f"{target}.{n}", [], node.lineno) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest or not subs:
                out.append((target, rest, node.lineno))
    return out


def _internal(target: str, modules: dict[str, Path]) -> str | None:
    """The package module an import resolves to (its nearest enclosing module we have)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _subpackage(name: str) -> str:
    """``cpfeatures.store._store`` -> ``store``; root modules are their own (``pipeline``)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The import circles among ``modules`` (strongly connected components of the import graph)."""
    graph = {}
    for name in modules:
        graph[name] = set()
        for target, _, _ in _imports(name, modules):
            if target.startswith("cpfeatures"):
                mod = _internal(target, modules)
                if mod and mod != name:
                    graph[name].add(mod)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


MODULES = _modules_of(PACKAGE)


def test_no_import_circle():
    assert _cycles(MODULES) == []


def test_the_scan_finds_a_circle_and_a_private_import(tmp_path):
    """The checks can fail: a circle through a function-level import and a private import across
    subpackages are found in a small package made for the purpose."""
    pkg = tmp_path / "cpfeatures"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .x import f\n")
    (pkg / "a" / "x.py").write_text("def f():\n    from ..b import _g\n")
    (pkg / "b.py").write_text("from .a import f\n\n\ndef _g():\n    pass\n")
    modules = _modules_of(pkg)
    assert _cycles(modules) == [sorted(["cpfeatures.a", "cpfeatures.a.x", "cpfeatures.b"])]
    assert _private_crossings(modules) == [("cpfeatures.a.x", "cpfeatures.b", "_g")]


def test_nothing_below_the_pipeline_imports_dask_zarr_the_store_or_the_run():
    found = []
    for name in MODULES:
        if not name.startswith(LOWER):
            continue
        for target, _, line in _imports(name, MODULES):
            if target.startswith(HEAVY) or target.split(".")[0] in HEAVY:
                found.append(f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert found == []


def test_only_the_store_reads_the_store_layout():
    found = []
    for name, path in MODULES.items():
        if _subpackage(name) == "store":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # ``x.root[...]`` or ``x.root.attrs``: reaching into a Zarr hierarchy's root. A class may
            # use its own (``self.root``: the crops store is a Zarr group of its own); a plate's root
            # folder is ``plate.root`` / ``p.root`` (a path, used as one).
            if isinstance(node, (ast.Subscript, ast.Attribute)):
                inner = node.value
                if isinstance(inner, ast.Attribute) and inner.attr == "root" and \
                        not (isinstance(inner.value, ast.Name) and inner.value.id == "self"):
                    if isinstance(node, ast.Subscript) or node.attr in ("attrs", "store", "path", "groups", "keys"):
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {ast.unparse(node)[:60]}")
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(getattr(n, "body", None), list)
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):  # code that names a layout file (a docstring may describe one)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith("zarr.json") \
                    and id(node) not in docs and _subpackage(name) != "crops":  # the crops store's own
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} names zarr.json")
    assert found == []


def _private_crossings(modules: dict[str, Path]) -> list[tuple[str, str, str]]:
    found = []
    for name in modules:
        for target, names, _ in _imports(name, modules):
            if not target.startswith("cpfeatures"):
                continue
            mod = _internal(target, modules) or target
            if _subpackage(mod) == _subpackage(name) and _subpackage(name) != "<root>":
                continue
            if mod == name:
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in target.split(".")[1:])
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private_module:
                found.append((name, target, ",".join(names) or "*"))
            for n in private_names:
                found.append((name, target, n))
    return found


def test_no_private_name_crosses_a_subpackage():
    assert _private_crossings(MODULES) == []


def test_the_package_root_is_small_and_its_docstring_is_a_map():
    import cpfeatures

    roots = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(roots) <= 6, roots
    subpackages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    doc = cpfeatures.__doc__
    listed = set(re.findall(r"^    (\w+)/? ", doc, flags=re.M))
    missing = [s for s in subpackages if s not in listed]
    assert missing == []
