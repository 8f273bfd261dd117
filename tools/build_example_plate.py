"""Build ``data/example_plate`` from the real CPJUMP1 example plate in ``../shared``.

Takes 4 of the 7 real sites (FK-866 twice, DMSO, TC-S-7004), crops the central
540 x 540 pixels of every channel (pixels unchanged, uint16, LZW as Harmony
writes), and writes a Harmony ``Index.idx.xml`` derived from the real one
(same fields, sizes updated), the matching rows of ``platemap.csv`` and a
manifest with checksums.

Run from the repository root::

    python tools/build_example_plate.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import pandas as pd
import tifffile

WELLS = ["D08", "D14", "G21", "L09"]
CROP = (slice(270, 810), slice(270, 810))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=Path(__file__).resolve().parents[2] / "shared", type=Path)
    parser.add_argument("--out", default=Path(__file__).resolve().parents[1] / "data" / "example_plate", type=Path)
    args = parser.parse_args()
    src = args.shared / "data" / "cpjump1_example_plate"
    out_images = args.out / "Images"
    out_images.mkdir(parents=True, exist_ok=True)

    codes = {f"{ord(w[0]) - 64:02d}{int(w[1:]):02d}" for w in WELLS}
    xml = (src / "Images" / "Index.idx.xml").read_text(encoding="utf-8")
    # Keep only the chosen wells' <Well id=.../>, <Well> blocks and <Image> blocks.
    xml = re.sub(r'\s*<Well id="(\d{4})" />', lambda m: m.group(0) if m.group(1) in codes else "", xml)
    xml = re.sub(r"\s*<Well>\s*<id>(\d{4})</id>.*?</Well>", lambda m: m.group(0) if m.group(1) in codes else "",
                 xml, flags=re.S)
    xml = re.sub(r'\s*<Image Version="1">\s*<id>(\d{4})K.*?</Image>',
                 lambda m: m.group(0) if m.group(1) in codes else "", xml, flags=re.S)
    h, w = CROP[0].stop - CROP[0].start, CROP[1].stop - CROP[1].start
    xml = xml.replace("<ImageSizeX>1080</ImageSizeX>", f"<ImageSizeX>{w}</ImageSizeX>")
    xml = xml.replace("<ImageSizeY>1080</ImageSizeY>", f"<ImageSizeY>{h}</ImageSizeY>")
    (out_images / "Index.idx.xml").write_bytes(xml.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))

    rows = []
    for tif in sorted((src / "Images").glob("*.tiff")):
        r, c = int(tif.name[1:3]), int(tif.name[4:6])
        if f"{r:02d}{c:02d}" not in codes:
            continue
        image = tifffile.imread(tif)[CROP]
        target = out_images / tif.name
        tifffile.imwrite(target, image, compression="lzw", photometric="minisblack")
        rows.append({"file": tif.name, "source_file": f"cpjump1_example_plate/Images/{tif.name}",
                     "crop_rows": f"{CROP[0].start}:{CROP[0].stop}", "crop_cols": f"{CROP[1].start}:{CROP[1].stop}",
                     "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
    pd.DataFrame(rows).to_csv(args.out / "manifest.csv", index=False)
    platemap = pd.read_csv(src / "platemap.csv")
    platemap[platemap["Metadata_Well"].isin(WELLS)].to_csv(args.out / "platemap.csv", index=False)
    print(f"wrote {len(rows)} images to {out_images}")


if __name__ == "__main__":
    main()
