"""Every command and snippet of the README, run verbatim in a fresh folder beside the bundled plate.

Bash lines starting with ``cpfeatures`` (and the command after ``pip install . &&`` of the quick
start) run in README order with the Python blocks, each Python block in a fresh interpreter.
Left out: the install and test commands themselves, and lines that need a service the README
names (``tcp://`` schedulers: ``tests/test_run.py`` runs one on 127.0.0.1).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
_NEEDS_SERVICE = ("tcp://", "s3://")


def readme_steps() -> list[tuple[str, str]]:
    """(kind, code) of every runnable README step, in order: ("sh", line) or ("python", block)."""
    steps = []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
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


def test_readme_has_the_two_newcomer_commands():
    text = README.read_text(encoding="utf-8")
    head = text[:text.index("## Reading a plate")]
    assert 'pip install . && cpfeatures run data/example_plate -o example.zarr' in head
    assert 'pip install ".[test]" && pytest' in head


@pytest.mark.slow
def test_every_readme_step_runs_verbatim(bundled_plate_dir, tmp_path):
    (tmp_path / "data").symlink_to(REPO / "data")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    steps = readme_steps()
    assert sum(kind == "sh" for kind, _ in steps) >= 10 and sum(kind == "python" for kind, _ in steps) >= 4
    for kind, code in steps:
        args = ["bash", "-c", code] if kind == "sh" else [sys.executable, "-c", code]
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README step failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, code
    # what the steps say they produce is there
    for made in ("example.zarr", "subset.zarr", "one.zarr", "settings.toml", "run.log", "tables/SingleCells.parquet",
                 "profiles.parquet", "scores/map.csv", "report.html", "D08.png"):
        assert (tmp_path / made).exists(), made
