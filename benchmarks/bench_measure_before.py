"""Measurement speed now against an earlier revision of cpfeatures, in one process, per family.

The earlier revision's package is extracted from git (``git archive``) as ``cpfeatures_before``
next to a temporary copy, so both versions are imported side by side and timed alternately on the
same real site (default M02, 181 cells, the densest shared site), CellProfiler's segmentation
details included. Each family is what a run does for it: ``pipeline.site_tables`` with the
revision's own default configuration restricted to that family, over 8 images x Nuclei, Cells and
Cytoplasm (+ the Image-table texture and granularity). Prints best-of-``--repeat`` CPU seconds
and the ratio before / now (> 1: now faster).

Default baseline: 92c32b7, the last commit before measure/ became a declared, validated API
(issue 16).

    python benchmarks/bench_measure_before.py [--baseline REV] [--well M02] [--repeat 5]
"""

from __future__ import annotations

import copy
import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _sites import cpu, load_site, site_parser  # noqa: E402  (benchmarks/_sites.py)

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["intensity", "texture", "granularity", "colocalization", "sizeshape", "radial", "neighbors"]
IMAGE_FAMILIES = {"texture", "granularity"}


def import_revision(rev: str, into: Path):
    """``cpfeatures`` as of git revision ``rev``, importable as ``cpfeatures_before``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "cpfeatures"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    package = into / "cpfeatures_before"
    (into / "cpfeatures").rename(package)
    # the package imports itself relatively except for a few absolute imports: point those at the copy
    absolute = re.compile(r"\b(from|import) cpfeatures\b")
    for path in package.rglob("*.py"):
        text = path.read_text()
        new = absolute.sub(r"\1 cpfeatures_before", text).replace('"cpfeatures.', '"cpfeatures_before.')
        if new != text:
            path.write_text(new)
    sys.path.insert(0, str(into))
    return importlib.import_module("cpfeatures_before")


def family_run(package, labels, images, details, family):
    """A callable doing what a run of ``package`` does for one family."""
    pipeline = importlib.import_module(f"{package.__name__}.pipeline")
    config = importlib.import_module(f"{package.__name__}.config")
    cfg = copy.deepcopy(config.load_config())
    cfg["measure"]["families"] = [family]
    cfg["measure"]["image_families"] = [family] if family in IMAGE_FAMILIES else []
    return lambda: pipeline.site_tables(labels, images, cfg, details)


def main() -> None:
    ap = site_parser(__doc__, repeat=5, repeat_help="alternating runs of each version (best of)")
    ap.add_argument("--baseline", default="92c32b7", help="git revision to compare with")
    args = ap.parse_args()
    images, labels = load_site(args.shared, args.well)
    import cpfeatures
    from cpfeatures.segment import segment_site

    # the run's segmentation details (objects discarded at the border, for neighbours)
    _, details = segment_site(images, illum=None, return_details=True)
    with tempfile.TemporaryDirectory() as tmp:
        before = import_revision(args.baseline, Path(tmp))
        versions = {"before": before, "now": cpfeatures}
        print(f"site {args.well}: {labels['Cells'].max()} cells, 8 images x 3 object sets; "
              f"before = {args.baseline}, now = working tree\n")
        print(f"{'family':<16}{'before CPU-s':>14}{'now CPU-s':>12}{'before/now':>12}")
        totals = dict.fromkeys(versions, 0.0)
        for family in FAMILIES:
            runs = {name: family_run(pkg, labels, images, details, family) for name, pkg in versions.items()}
            for run in runs.values():  # compile and fault in both first
                run()
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(max(1, args.repeat)):
                for name, run in runs.items():
                    best[name] = min(best[name], cpu(run)[0])
            for name in totals:
                totals[name] += best[name]
            print(f"{family:<16}{best['before']:>14.3f}{best['now']:>12.3f}{best['before'] / best['now']:>11.2f}x")
        print(f"{'all families':<16}{totals['before']:>14.3f}{totals['now']:>12.3f}"
              f"{totals['before'] / totals['now']:>11.2f}x")


if __name__ == "__main__":
    main()
