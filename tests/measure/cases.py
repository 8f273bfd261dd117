"""Degenerate and random objects for the per-family comparisons with CellProfiler 4.2.8.

The same generator feeds ``tools/cellprofiler_cases.py``, which ran CellProfiler 4.2.8's own
modules on these inputs and recorded their outputs (``data/cellprofiler428_cases.npz``). It uses
only numpy's random generator, integer labelling and additions / multiplications, so the inputs
are bit-identical under numpy 1.23 (CellProfiler's) and numpy 2 (the checksum in the recording
says so). Images are float32, as CellProfiler holds every image.
"""

from __future__ import annotations

import zlib

import numpy as np
import scipy.ndimage as ndi

S = (48, 48)


def _noise(shape, seed, lo=0.05, hi=0.95):
    return (lo + (hi - lo) * np.random.default_rng(seed).random(shape)).astype(np.float32)


def _box(field, k):
    """A k x k moving average by cumulative sums (additions only: the same bits everywhere)."""
    p = np.pad(field, k, mode="edge")
    c = np.cumsum(np.cumsum(p, axis=0), axis=1)
    c = np.pad(c, ((1, 0), (1, 0)))
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    h, w = field.shape
    off = k // 2 + (k + 1) // 2
    return s[off:off + h, off:off + w] / (k * k)


def _smooth(shape, seed, k=7):
    a = _box(np.random.default_rng(seed).random(shape), k)
    a = (a - a.min()) / (a.max() - a.min())
    return (0.05 + 0.9 * a).astype(np.float32)


def blobs(shape, seed, k=7, level=0.56):
    """Irregular objects (some with holes): components of a thresholded smoothed field."""
    field = _box(np.random.default_rng(seed).random(shape), k)
    field = (field - field.min()) / (field.max() - field.min())
    labels, _ = ndi.label(field > level)
    return labels.astype(np.int32)


def disk(cy, cx, r, shape=S):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def build() -> dict[str, dict]:
    """name -> {"labels": int32, "image": float32, "image2": float32, "note": str}."""
    cases: dict[str, dict] = {}

    def add(name, labels, image=None, image2=None, note=""):
        seed = zlib.crc32(name.encode())
        labels = np.asarray(labels, np.int32)
        image = _noise(labels.shape, seed) if image is None else image
        image2 = _smooth(labels.shape, seed + 1) if image2 is None else image2
        cases[name] = {"labels": labels, "image": np.asarray(image, np.float32),
                       "image2": np.asarray(image2, np.float32), "note": note}

    lab = np.zeros(S, np.int32)
    for k, (y, x) in enumerate([(10, 10), (10, 20), (30, 30), (0, 5), (47, 47), (0, 0), (30, 47)]):
        lab[y, x] = k + 1
    add("single_pixels", lab, note="one-pixel objects inside, on the border, in a corner")

    lab = np.zeros(S, np.int32)
    lab[5, 5:25] = 1
    lab[10:30, 40] = 2
    for i in range(12):
        lab[30 + i, 5 + i] = 3
        lab[30 + i, 44 - i] = 4
    lab[45, 10:13] = 5
    add("lines", lab, note="one-pixel-wide lines: horizontal, vertical, diagonal, anti-diagonal, short")

    lab = np.zeros(S, np.int32)
    lab[5, 5:7] = 1
    lab[10:12, 10] = 2
    lab[20, 20] = lab[21, 21] = 3
    lab[30, 31] = lab[31, 30] = 4
    lab[0, 40:42] = 5
    add("two_pixels", lab, note="two-pixel objects, one on the border")

    shapes = blobs(S, 11)
    add("one_gray_level", shapes, np.full(S, 0.3, np.float32), note="constant intensity 0.3")
    rng = np.random.default_rng(5)
    add("one_quantized_level", shapes, (77 / 255 + (rng.random(S) - 0.5) * (0.9 / 255)).astype(np.float32),
        note="intensities vary but all quantize to gray level 77")
    add("two_levels", shapes, np.where(np.random.default_rng(6).random(S) > 0.5, 77 / 255, 78 / 255)
        .astype(np.float32), note="two gray levels at random")
    add("all_zero", shapes, np.zeros(S, np.float32), note="zero intensity")
    add("all_one", shapes, np.ones(S, np.float32), note="saturated: 1.0 everywhere")
    half = _noise(S, 7)
    half[:, :24] = 0
    add("zero_region", shapes, half, note="the left half of the image is 0 (tied minima and maxima)")

    lab = np.zeros((64, 64), np.int32)
    for k in range(16):
        gy, gx = divmod(k, 4)
        h, w = 2 + (5 * k) % 11, 3 + (3 * k) % 11
        lab[gy * 16 + 1:gy * 16 + 1 + h, gx * 16 + 1:gx * 16 + 1 + w] = k + 1
    lab[1:8, 1:11] = 1  # 7 x 10: 49 pairs at distance 3, and 98 * (1 / 98) != 1
    add("constant_rectangles", lab, np.full((64, 64), 0.3, np.float32),
        note="rectangles of one gray level: co-occurrence matrices with one cell")

    lab = np.zeros(S, np.int32)
    lab[0:8, 15:30] = 1
    lab[40:48, 10:25] = 2
    lab[15:30, 0:6] = 3
    lab[20:35, 42:48] = 4
    lab[0:5, 0:5] = 5
    lab[22:28, 22:28] = 6
    add("border", lab, _smooth(S, 9), note="objects touching each border and a corner, one inside")

    lab = np.zeros(S, np.int32)
    lab[disk(15, 15, 10) & ~disk(15, 15, 4)] = 1
    lab[26:46, 26:46] = 2
    lab[31:41, 31:41] = 0
    lab[34:37, 34:37] = 3
    lab[30:40, 3:16] = 4
    lab[34, 9] = 0
    add("holes", lab, _smooth(S, 10), note="an annulus, a square with a hole holding object 3, a one-pixel hole")

    lab = np.zeros(S, np.int32)
    lab[disk(12, 12, 7)] = 1
    lab[disk(34, 15, 8)] = 3
    lab[disk(24, 36, 8)] = 7
    add("label_gaps", lab, _smooth(S, 12), note="labels 1, 3 and 7 only")

    lab = np.zeros(S, np.int32)
    lab[disk(24, 24, 12)] = 1
    add("single_object", lab, _smooth(S, 13), note="one disk")
    lab = np.zeros(S, np.int32)
    lab[2:46, 1:47] = 1
    add("most_of_the_image", lab, _smooth(S, 14), note="one object covering most of the image")
    add("whole_image", np.ones(S, np.int32), _smooth(S, 15), note="one object is the whole image")

    for seed in range(3):
        add(f"random_{seed}", blobs(S, 100 + seed), _noise(S, 200 + seed) * 0.5 + _smooth(S, 300 + seed) * 0.5,
            _smooth(S, 400 + seed), note="random shapes and intensities")

    pair = blobs(S, 31)
    a = _noise(S, 32)
    add("coloc_constant_second", pair, a, np.full(S, 0.4, np.float32), note="colocalization: second constant")
    add("coloc_identical", pair, a, a.copy(), note="colocalization: identical images")
    add("coloc_anticorrelated", pair, a, (1 - a).astype(np.float32), note="colocalization: 1 - first")
    add("coloc_zero_second", pair, a, np.zeros(S, np.float32), note="colocalization: second all zero")
    return cases


def checksum(cases: dict[str, dict]) -> int:
    """CRC-32 of every case's arrays, in order: the recording holds the one it was made from."""
    crc = 0
    for name in sorted(cases):
        for key in ("labels", "image", "image2"):
            crc = zlib.crc32(np.ascontiguousarray(cases[name][key]).tobytes(), crc)
    return crc


# --- CellProfiler 4.2.8's recorded answers (tools/cellprofiler_cases.py) --------------------------

RECORDING = __import__("pathlib").Path(__file__).with_name("data") / "cellprofiler428_cases.npz"
NAMES = ["single_pixels", "lines", "two_pixels", "one_gray_level", "one_quantized_level", "two_levels", "all_zero",
         "all_one", "zero_region", "constant_rectangles", "border", "holes", "label_gaps", "single_object",
         "most_of_the_image", "whole_image", "random_0", "random_1", "random_2", "coloc_constant_second",
         "coloc_identical", "coloc_anticorrelated", "coloc_zero_second"]
_BUILT: dict = {}
_RECORDED: dict = {}


def case(name: str) -> dict:
    if not _BUILT:
        _BUILT.update(build())
    return _BUILT[name]


def recorded() -> "np.lib.npyio.NpzFile":
    if not _RECORDED:
        _RECORDED["npz"] = np.load(RECORDING)
    return _RECORDED["npz"]


def cellprofiler(name: str, family: str, kind: str = "objects") -> dict[str, np.ndarray]:
    """CellProfiler's values for one case and family: feature -> per-object array (or image value)."""
    import json

    data = recorded()
    key = f"{name}/{family}/{kind}"
    if key not in data.files:
        return {}
    names = json.loads(str(data[key + "_names"]))
    lengths = data[key + "_lengths"]
    table = data[key]
    return {n: table[:length, j] for j, (n, length) in enumerate(zip(names, lengths))}


def by_label(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """CellProfiler's per-object array as one value per label 1..max.

    Most modules index by label; MeasureTexture and the regionprops columns of
    MeasureObjectSizeShape store one value per *present* object, in label order (after a
    gap in the numbering, CellProfiler's own rows then belong to the next label): those
    are put back at their labels here, so that both are compared object by object.
    """
    present = np.unique(labels[labels > 0])
    n = int(labels.max()) if labels.size else 0
    if len(values) == n:
        return values
    out = np.full(n, np.nan)
    if len(values) == present.size:
        out[present - 1] = values
    else:  # e.g. an image without objects, where CellProfiler still writes one value
        out[:min(n, len(values))] = values[:n]
    return out


def mismatches(ours: dict, theirs: dict, labels: np.ndarray | None, rtol: float, atol: float,
               skip=()) -> list[str]:
    """Where ours and CellProfiler's differ beyond ``atol + rtol |CellProfiler|`` (present objects only),
    differ in NaN, or where a column is missing."""
    bad = []
    present = None
    if labels is not None and labels.size:
        present = np.unique(labels[labels > 0]) - 1
    for key, ref in theirs.items():
        if any(s in key for s in skip):
            continue
        if key not in ours:
            bad.append(f"{key}: missing")
            continue
        a = np.atleast_1d(np.asarray(ours[key], float))
        b = by_label(ref, labels) if labels is not None else ref[:1]
        if present is not None:
            a, b = a[present], b[present]
        same_nan = np.isnan(a) == np.isnan(b)
        ok = ~np.isnan(a) & ~np.isnan(b)
        with np.errstate(invalid="ignore"):  # inf - inf (FormFactor of a one-pixel object)
            far = ~((a[ok] == b[ok]) | (np.abs(a[ok] - b[ok]) <= atol + rtol * np.abs(b[ok])))
        if not same_nan.all() or far.any():
            i = int(np.flatnonzero(~same_nan)[0]) if not same_nan.all() else int(np.flatnonzero(ok)[far][0])
            bad.append(f"{key}[{i}]: ours {a[i]!r}, CellProfiler {b[i]!r}")
    return bad


def ours(name: str, family: str, kind: str = "objects") -> dict:
    """cpfeatures' values for one case through the family's registry entry, named as CellProfiler's
    (image ``img``; colocalization ``A`` and ``B``), CPJUMP1 settings."""
    from cpfeatures.measure import FAMILIES, IMAGE_FAMILIES, Objects
    from cpfeatures.measure._core import validated_images

    c = case(name)
    images = validated_images({"A": c["image"], "B": c["image2"]} if family == "colocalization"
                              else {"img": c["image"]})
    if kind == "image":
        return IMAGE_FAMILIES[family].image(images, None, {})
    settings = {"measurements": [5, 1, "adjacent"]} if family == "neighbors" else None
    return FAMILIES[family].objects(Objects(c["labels"]), images, settings, {})


def assert_equals_cellprofiler(name: str, family: str, rtol: float, atol: float, kind: str = "objects",
                               skip=()) -> None:
    """The case's values equal CellProfiler 4.2.8's recording within ``atol + rtol |CellProfiler|``."""
    case(name)
    assert checksum(_BUILT) == int(recorded()["checksum"]), "the cases are not the ones CellProfiler measured"
    theirs = cellprofiler(name, family, kind)
    if not theirs:
        pytest_skip = __import__("pytest").skip
        pytest_skip(f"CellProfiler measured nothing for {name} ({family} {kind})")
    bad = mismatches(ours(name, family, kind), theirs, case(name)["labels"] if kind == "objects" else None,
                     rtol, atol, skip)
    assert not bad, f"{len(bad)} of {len(theirs)} columns differ from CellProfiler 4.2.8: {bad[:5]}"
