"""What the scoring warned about reaches the report: the same numbers carry the same caveats."""

from __future__ import annotations

import html
import subprocess
import sys

CLI = [sys.executable, "-m", "cpfeatures.cli"]


def test_the_report_shows_the_warnings_the_score_command_gave(bundled_run, bundled_plate_dir, tmp_path):
    profiles = tmp_path / "profiles.parquet"
    subprocess.run(CLI + ["profile", str(bundled_run), "--platemap", str(bundled_plate_dir / "platemap.csv"), "-o",
                          str(profiles)], check=True, capture_output=True, timeout=300)
    scored = subprocess.run(CLI + ["score", str(profiles), "--replicates-by", "Metadata_pert_iname", "-o",
                                   str(tmp_path / "scores")], capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr
    said = [ln[len("warning: "):] for ln in scored.stderr.splitlines() if ln.startswith("warning: ")]
    assert any("2 feature(s) only" in w for w in said)  # 4 wells, a strict selection: the scores say little
    assert (tmp_path / "scores" / "warnings.txt").read_text().splitlines() == said
    report = subprocess.run(CLI + ["report", str(bundled_run), "-o", str(tmp_path / "r.html"), "--overlays", "0",
                                   "--scores", str(tmp_path / "scores")], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    for warning in said:
        assert f'<p class="warn">{html.escape("Warning from the scoring: " + warning)}</p>' in page
