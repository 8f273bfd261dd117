"""Build bigger plates from the real example sites by symlinks, and grow stores from real runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cpfeatures.io import read_plate, well_name


def wells_of(n: int, columns: int = 24) -> list[str]:
    """The first ``n`` wells of a plate with ``columns`` columns, in row order (A01, A02, ...)."""
    return [well_name(i // columns + 1, i % columns + 1) for i in range(n)]


def symlink_plate(source: str | os.PathLike, out: str | os.PathLike, n_sites: int | None = None,
                  wells: list[str] | None = None, fields=(5,)) -> Path:
    """A Harmony plate whose every (well, field) points at one of the source's real sites, in a cycle.

    Either ``n_sites`` wells (field 5) or the given ``wells`` x ``fields``. Images are symlinks to
    the source TIFFs; the index is the source's with ``<Image>`` entries repeated under the new
    positions.
    """
    src = read_plate(source)
    wells = wells if wells is not None else wells_of(n_sites)
    out = Path(out)
    images_dir = out / "Images"
    images_dir.mkdir(parents=True, exist_ok=True)
    xml = Path(src.index_path).read_text(encoding="utf-8")
    blocks = re.findall(r'    <Image Version="1">.*?</Image>\r?\n', xml, flags=re.S)
    by_site: dict[tuple[int, int], list[str]] = {}
    for block in blocks:
        key = (int(re.search(r"<Row>(\d+)</Row>", block).group(1)), int(re.search(r"<Col>(\d+)</Col>", block).group(1)))
        by_site.setdefault(key, []).append(block)
    sources = list(by_site.values())
    new_blocks = []
    i = 0
    for well in wells:
        row, col = ord(well[0]) - 64, int(well[1:])
        for fieldno in fields:
            for block in sources[i % len(sources)]:
                url = re.search(r"<URL>(.*?)</URL>", block).group(1)
                new_url = re.sub(r"^r\d+c\d+f\d+", f"r{row:02d}c{col:02d}f{fieldno:02d}", url)
                link = images_dir / new_url
                if not link.exists():
                    link.symlink_to(Path(src.root) / url)
                b = block.replace(f"<URL>{url}</URL>", f"<URL>{new_url}</URL>")
                b = re.sub(r"<Row>\d+</Row>", f"<Row>{row}</Row>", b)
                b = re.sub(r"<Col>\d+</Col>", f"<Col>{col}</Col>", b)
                b = re.sub(r"<FieldID>\d+</FieldID>", f"<FieldID>{fieldno}</FieldID>", b)
                b = re.sub(r"<id>\d{4}K1F\d+", f"<id>{row:02d}{col:02d}K1F{fieldno}", b)
                new_blocks.append(b)
            i += 1
    head, rest = xml.split("  <Images>", 1)
    tail = rest.split("  </Images>", 1)[1]
    head = re.sub(r'\s*<Well id="\d{4}" />', "", head)
    head = re.sub(r"\s*<Well>.*?</Well>", "", head, flags=re.S)
    (images_dir / "Index.idx.xml").write_text(head + "  <Images>\r\n" + "".join(new_blocks) + "  </Images>" + tail,
                                              encoding="utf-8")
    return out


def grow_store(source: str | os.PathLike, out: str | os.PathLike, wells: list[str], fields) -> Path:
    """A store of ``wells`` x ``fields`` sites made of a real run's committed sites, in a cycle.

    Each new site is the source site's group with its attributes renamed (well, field) and
    its chunk files hard-linked, so a 3,456-site store costs seconds and little disk.
    """
    source, out = Path(source), Path(out)
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("sites", "errors", "lock"))
    (out / "sites").mkdir()
    shutil.copy2(source / "sites" / "zarr.json", out / "sites" / "zarr.json")
    (out / "errors").mkdir()
    shutil.copy2(source / "errors" / "zarr.json", out / "errors" / "zarr.json")
    real = sorted(p for p in (source / "sites").iterdir() if p.is_dir())
    i = 0
    for well in wells:
        for fieldno in fields:
            src = real[i % len(real)]
            dst = out / "sites" / f"{well}_f{fieldno}"
            shutil.copytree(src, dst, copy_function=os.link)
            meta = json.loads((src / "zarr.json").read_text())
            meta["attributes"].update({"well": well, "site": int(fieldno)})
            (dst / "zarr.json").unlink()  # a hard link to the source's: write a file of its own
            (dst / "zarr.json").write_text(json.dumps(meta))
            i += 1
    return out


def real_run(root: Path, plate: str | os.PathLike, store: str | os.PathLike | None = None,
             save_labels: bool = False) -> Path:
    """``store`` if given, else a run of ``plate`` into ``root/run.zarr`` (once: an existing one is reused)."""
    if store is not None:
        return Path(store)
    run = Path(root) / "run.zarr"
    if not run.exists():
        print(f"running {plate} -> {run}", flush=True)
        done = measure(["run", plate, "-o", run, "--workers", "1", "--progress", "none"]
                       + (["--save-labels"] if save_labels else []))
        assert done["code"] == 0, done
    return run


# -- one command in a process of its own, timed, with its peak memory --------------------------------------

def hwm(pid="self") -> float:
    """Peak resident memory of a process in MB: VmHWM (ru_maxrss would carry a forked parent's over exec)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return 0.0


#: The first lines of a child script that measures its own peak memory with :func:`hwm`.
IMPORT_HWM = f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom _plates import hwm\n"

# Runs one cpfeatures command in this child process and prints its time and memory as JSON
# (its worker processes' peak is sampled twice a second).
RUNNER = IMPORT_HWM + """
import json, sys, threading, time
import psutil
from cpfeatures.cli import main
peaks = {}
def watch():
    while True:
        for child in psutil.Process().children(recursive=True):
            peaks[child.pid] = max(peaks.get(child.pid, 0.0), hwm(child.pid))
        time.sleep(0.5)
threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
code = 0
try:
    main.main(args=sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"seconds": time.perf_counter() - t0, "code": code, "peak_mb": hwm(),
                  "children_peak_mb": max(peaks.values(), default=0.0)}), file=sys.stderr)
"""


def measure(args: list[str], script: str = RUNNER, timeout: float = 7200) -> dict:
    """Run a cpfeatures command (or ``script``) in a new process: its seconds, exit code and peak MB."""
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])
