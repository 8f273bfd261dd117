"""The README and the manual in docs/: every command and snippet runs verbatim, and what they name exists.

Bash lines starting with ``cpfeatures`` (and the command after ``pip install . &&`` of the quick
start) run with the Python blocks, in the order of the README and then of the pages
``docs/index.md`` lists, in one fresh folder beside the bundled plate; each Python block in a
fresh interpreter. Left out: the install and test commands themselves, lines that need a service
the pages name (``tcp://`` schedulers: ``tests/run/test_plate.py`` runs one on 127.0.0.1; ``s3://``:
``tests/run/test_s3.py``), and blocks marked ``text``.

The fast tests check what the pages name: the newcomer commands near the top of the README, the
pages listed by the index and the README, links and their anchors, module paths and functions,
files of the repository. ``docs/store.md`` is the one description of the store's layout: a run's
store is checked against it.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
INDEX = DOCS / "index.md"
_NEEDS_SERVICE = ("tcp://", "s3://")
_FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def manual_pages() -> list[Path]:
    """The README, then docs/index.md and the pages it lists, in its order."""
    listed = [DOCS / target for target in _LINK.findall(INDEX.read_text(encoding="utf-8"))
              if target.endswith(".md") and "/" not in target]
    return [README, INDEX, *dict.fromkeys(listed)]


def page_steps(page: Path) -> list[tuple[str, str]]:
    """(kind, code) of every runnable step of a page, in order: ("sh", line) or ("python", block)."""
    steps = []
    for lang, body in _FENCE.findall(page.read_text(encoding="utf-8")):
        if lang == "python":
            steps.append(("python", body))
        elif lang == "bash":
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip()
                if "pip install . &&" in line:
                    line = line.rsplit("&&", 1)[1].strip()
                if line.startswith("cpfeatures") and not any(s in line for s in _NEEDS_SERVICE):
                    steps.append(("sh", line))
    return steps


def manual_steps() -> list[tuple[str, str, str]]:
    """(page, kind, code) of every runnable step of the README and the manual, in reading order."""
    return [(page.relative_to(REPO).as_posix(), kind, code) for page in manual_pages()
            for kind, code in page_steps(page)]


def _prose(text: str) -> str:
    """A page without its fenced blocks."""
    return _FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


# -- the README ---------------------------------------------------------------------------------

def test_readme_has_the_two_newcomer_commands():
    text = README.read_text(encoding="utf-8")
    head = text[:text.index("## A tour")]
    assert len(head.splitlines()) <= 40
    assert 'pip install . && cpfeatures run data/example_plate -o example.zarr' in head
    assert 'pip install ".[test]" && pytest' in head


def test_readme_is_short_and_maps_the_package_and_the_manual():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 170
    links = set(_LINK.findall(text))
    assert "docs/index.md" in links
    assert {f"docs/{p.name}" for p in manual_pages()[2:]} <= links
    for package in sorted(p.parent.name for p in (REPO / "cpfeatures").glob("*/__init__.py")):
        assert re.search(rf"^  {package}/ ", text, flags=re.M), f"the README's map lacks {package}/"
    for module in sorted(p.name for p in (REPO / "cpfeatures").glob("*.py") if p.name != "__init__.py"):
        assert re.search(rf"^  {re.escape(module)} ", text, flags=re.M), f"the README's map lacks {module}"


def test_the_readme_pipelines_table_is_the_manuals():
    """tests/cppipe/test_public_pipelines.py checks the README's copy against the import itself."""
    def rows(page: Path) -> list[str]:
        return [line for line in page.read_text(encoding="utf-8").splitlines()
                if line.startswith(("| Cell Painting protocol", "| WayScience"))]

    assert len(rows(README)) == 4 and rows(README) == rows(DOCS / "running.md")


# -- the manual ---------------------------------------------------------------------------------

def test_every_page_is_in_the_index():
    pages = manual_pages()
    assert all(p.exists() for p in pages), [p.name for p in pages if not p.exists()]
    assert set(DOCS.glob("*.md")) == set(pages[1:]), "a page of docs/ is not listed by docs/index.md (or the reverse)"


def test_links_and_anchors_resolve():
    bad = []
    for page in manual_pages():
        for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{page.name}: {target} (no such heading)")
    assert not bad, "\n".join(bad)


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_named_modules_functions_and_files_exist():
    from cpfeatures.store import Store

    bad = []
    for page in manual_pages():
        for span in re.findall(r"`([^`\n]+)`", _prose(page.read_text(encoding="utf-8"))):
            for dotted in re.findall(r"\bcpfeatures(?:\.[A-Za-z_]\w*)+", span):
                try:
                    _resolve(dotted)
                except (ImportError, AttributeError) as exc:
                    bad.append(f"{page.name}: {dotted} ({type(exc).__name__}: {exc})")
            for method in re.findall(r"\bStore\.(\w+)", span):
                if not hasattr(Store, method):
                    bad.append(f"{page.name}: Store.{method}")
            for token in span.split():
                token = token.rstrip(",;:)")
                if re.fullmatch(r"bench_\w+\.py", token):
                    token = f"benchmarks/{token}"
                if re.match(r"(tests|benchmarks|tools|data|docs|cpfeatures)/", token) and not re.search(r"[<*]", token):
                    if not (REPO / token).exists():
                        bad.append(f"{page.name}: {token} (no such file)")
    assert not bad, "\n".join(bad)


# -- running it ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_step_of_the_readme_and_the_manual_runs_verbatim(bundled_plate_dir, tmp_path):
    (tmp_path / "data").symlink_to(REPO / "data")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    steps = manual_steps()
    # as many as the README alone ran before the manual moved to docs/ (20 commands, 9 Python blocks)
    assert sum(kind == "sh" for _, kind, _ in steps) >= 20 and sum(kind == "python" for _, kind, _ in steps) >= 9
    assert steps[0] == ("README.md", "sh", "cpfeatures run data/example_plate -o example.zarr")
    for page, kind, code in steps:
        args = ["bash", "-c", code] if kind == "sh" else [sys.executable, "-c", code]
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{page}: step failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{page}: {code}"
    # what the steps say they produce is there
    for made in ("example.zarr", "subset.zarr", "one.zarr", "settings.toml", "run.log", "tables/SingleCells.parquet",
                 "cpjump1.toml", "cells.h5ad", "store_names/SingleCells.parquet", "profiles.parquet",
                 "profiles_features.txt", "scores/map.csv", "report.html", "D08.png", "crops.zarr"):
        assert (tmp_path / made).exists(), made


def _layout_block() -> str:
    text = (DOCS / "store.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout"):]
    return _FENCE.search(section).group(2)


@pytest.mark.slow
def test_the_store_layout_is_the_one_the_code_writes(bundled_plate_dir, tmp_path):
    """Every node, attribute, dtype and dimension a run writes is named in docs/store.md's layout."""
    import json

    import zarr

    from cpfeatures.errors import CpfeaturesError
    from cpfeatures.run import run_plate
    from cpfeatures.store import Store, StoreLock

    layout = _layout_block()
    words = set(re.findall(r"[\w<>]+", layout))
    out = tmp_path / "run.zarr"
    summary = run_plate(bundled_plate_dir, out, workers=1, progress=False, sites=["D08_f5"], save_labels=True)
    assert summary.ok
    Store(out, mode="a").record_error("D14", 5, CpfeaturesError("a failure", "some.tiff"))
    lock = StoreLock(str(out)).acquire()
    try:
        lock_record = lock.read()
    finally:
        lock.release()

    def named(name: str, table: str | None = None) -> bool:
        return name in words or (table is not None and name.replace(table, "<Table>") in words)

    root = zarr.open_group(str(out), mode="r", use_consolidated=False)
    document = json.loads((out / "zarr.json").read_text())
    missing = [f"root zarr.json: {k}" for k in document if k not in ("zarr_format", "node_type", "attributes")
               and not named(k)]
    missing += [f"root attribute: {k}" for k in root.attrs["cpfeatures"] if not named(k)]
    missing += [f"root attribute: {k}" for k in root.attrs if k != "cpfeatures"]
    missing += [f"phase_seconds: {k}" for k in root.attrs["cpfeatures"]["phase_seconds"] if not named(k)]
    for name in root.keys():
        table = name.removesuffix("_feature")
        if not named(name, table):
            missing.append(f"root node: {name}")
        if name.endswith("_feature") and not named(root[name].metadata.dimension_names[0], table):
            missing.append(f"dimension of {name}")
    missing += [f"illum attribute: {k}" for k in root["illum"].attrs if not named(k)]
    for role, arr in root["illum"].arrays():
        if str(arr.dtype) not in words or not all(named(d) for d in arr.metadata.dimension_names):
            missing.append(f"illum/{role}: {arr.dtype} {arr.metadata.dimension_names}")
    missing += [f"columns attribute: {k}" for group in root["columns"].group_values() for k in group.attrs
                if not named(k)]
    site = root["sites/D08_f5"]
    missing += [f"site attribute: {k}" for k in site.attrs if not named(k)]
    for name, arr in site.arrays():
        if not named(name) or str(arr.dtype) not in words or \
                not all(named(d, name) for d in arr.metadata.dimension_names):
            missing.append(f"site array {name}: {arr.dtype} {arr.metadata.dimension_names}")
    for name, arr in site["labels"].arrays():
        if not named(name) or str(arr.dtype) not in words or not all(named(d) for d in arr.metadata.dimension_names):
            missing.append(f"labels/{name}: {arr.dtype}")
    assert sorted(n for n, _ in site["labels"].arrays()) == ["Cells", "Cytoplasm", "Nuclei"]
    missing += [f"error attribute: {k}" for k in root["errors/D14_f5"].attrs if not named(k)]
    missing += [f"lock attribute: {k}" for k in lock_record if not named(k)]
    missing += [f"lock: {k}" for k in ("lock", "cpfeatures_lock") if not named(k)]
    assert not missing, "docs/store.md's layout does not name:\n" + "\n".join(missing)
    assert not (out / "lock").exists()  # released: the lock is there only while a run writes
