"""Build bigger plates from the real example sites by symlinks (for run benchmarks)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cpfeatures.io import read_plate


def symlink_plate(source: str | os.PathLike, out: str | os.PathLike, n_sites: int) -> Path:
    """A Harmony plate of ``n_sites`` wells (field 5), cycling through the source's real sites.

    Images are symlinks to the source TIFFs; the index is the source's with
    ``<Image>`` entries repeated under new well positions.
    """
    src = read_plate(source)
    out = Path(out)
    images_dir = out / "Images"
    images_dir.mkdir(parents=True, exist_ok=True)
    xml = Path(src.index_path).read_text(encoding="utf-8")
    blocks = re.findall(r'    <Image Version="1">.*?</Image>\r?\n', xml, flags=re.S)
    by_site: dict[tuple[int, int], list[str]] = {}
    for block in blocks:
        r = int(re.search(r"<Row>(\d+)</Row>", block).group(1))
        c = int(re.search(r"<Col>(\d+)</Col>", block).group(1))
        by_site.setdefault((r, c), []).append(block)
    sources = list(by_site.items())
    new_blocks = []
    for i in range(n_sites):
        row, col = i // 24 + 1, i % 24 + 1
        (sr, sc), site_blocks = sources[i % len(sources)]
        for block in site_blocks:
            url = re.search(r"<URL>(.*?)</URL>", block).group(1)
            new_url = re.sub(r"^r\d+c\d+", f"r{row:02d}c{col:02d}", url)
            link = images_dir / new_url
            if not link.exists():
                link.symlink_to(Path(src.root) / url)
            b = block.replace(f"<URL>{url}</URL>", f"<URL>{new_url}</URL>")
            b = re.sub(r"<Row>\d+</Row>", f"<Row>{row}</Row>", b)
            b = re.sub(r"<Col>\d+</Col>", f"<Col>{col}</Col>", b)
            b = re.sub(r"<id>\d{4}K", f"<id>{row:02d}{col:02d}K", b)
            new_blocks.append(b)
    head, rest = xml.split("  <Images>", 1)
    tail = rest.split("  </Images>", 1)[1]
    head = re.sub(r'\s*<Well id="\d{4}" />', "", head)
    head = re.sub(r"\s*<Well>.*?</Well>", "", head, flags=re.S)
    (images_dir / "Index.idx.xml").write_text(head + "  <Images>\r\n" + "".join(new_blocks) + "  </Images>" + tail,
                                              encoding="utf-8")
    return out
