"""MaskImage and MeasureImageIntensity: whole-image intensity statistics for the Image table.

CellProfiler 4.2.8's definitions.

MaskImage (``Use objects or an image as a mask?`` = Objects) makes a *masked image*: the mask
is ``labels > 0`` (``labels == 0`` when inverted, the Cell Painting protocol's
``<Image>_BackgroundOnly``), and-ed with the input image's own mask when it has one; the
output pixels are the input pixels where the mask is true and **0 where it is false**, and
the output carries the mask. With an image as the mask, a boolean image is the mask as is and
any other image is ``> 0.5``; inverting is ``== 0`` of that.

MeasureImageIntensity measures the pixels of an image that are unmasked (the image's mask) and,
with "only from areas enclosed by objects", inside an object (``labels != 0``). Of those
pixels, the non-finite ones (NaN, +-inf) are dropped; then, in the image's own precision:

- ``TotalArea``: the number of pixels measured.
- ``TotalIntensity``: their sum; ``MeanIntensity``: the sum / the count.
- ``StdIntensity``: population standard deviation (``ddof=0``).
- ``MedianIntensity``, ``LowerQuartileIntensity``, ``UpperQuartileIntensity`` and the
  optional ``Percentile_<N>``: :func:`numpy.percentile`'s default (linear interpolation
  between the closest ranks, ``(n - 1) * q / 100``) at 50, 25, 75 and N.
- ``MADIntensity``: median of ``|x - median(x)|``.
- ``MinIntensity``, ``MaxIntensity``; ``PercentMaximal``: 100 x the fraction of measured
  pixels equal to the maximum (not to 1).

With no pixel selected (a fully masked image, no object) every statistic is 0, ``TotalArea``
included.

References
----------
CellProfiler 4.2.8, ``cellprofiler/modules/maskimage.py`` and
``cellprofiler/modules/measureimageintensity.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._objects import as_loaded

__all__ = ["mask_image", "image_intensity", "IMAGE_INTENSITY_FEATURES"]

#: MeasureImageIntensity's statistics, in CellProfiler's column order, without the image name
IMAGE_INTENSITY_FEATURES = (
    "TotalIntensity", "MeanIntensity", "MedianIntensity", "StdIntensity", "MADIntensity", "MinIntensity",
    "MaxIntensity", "TotalArea", "PercentMaximal", "LowerQuartileIntensity", "UpperQuartileIntensity",
)


def _bool_like(array, shape, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise InputError(f"{name} shape {array.shape} differs from image shape {tuple(shape)}")
    return array


def mask_image(image, labels=None, mask=None, invert: bool = False, *, masking_image=None):
    """CellProfiler's MaskImage: an image masked by objects (or by a masking image).

    Parameters
    ----------
    image : (H, W) or (H, W, C) or (Z, H, W) array_like
        The image to mask, any numeric type (values are kept as they are).
    labels : array_like of int, optional
        The masking objects (0 background), the image's shape (without the channel axis of a
        colour image). The mask is ``labels > 0``, or ``labels == 0`` with ``invert``.
    mask : array_like of bool, optional
        The input image's own mask (True = use the pixel), and-ed into the result.
    invert : bool
        Invert the objects' (or the masking image's) mask: keep what is outside the objects,
        the Cell Painting protocol's ``_BackgroundOnly`` images.
    masking_image : array_like, optional
        Instead of ``labels``, "Use ... an image as a mask": a boolean image is the mask,
        any other is ``> 0.5``; with ``invert`` its ``== 0``.

    Returns
    -------
    image : ndarray
        A copy of ``image`` (same dtype) set to 0 where the mask is false.
    mask : ndarray of bool
        The mask the masked image carries (pass it on to :func:`image_intensity`).

    Raises
    ------
    InputError
        Neither or both of ``labels`` and ``masking_image``, or shapes that differ.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    >>> labels = np.array([[0, 1, 1], [0, 0, 2]])
    >>> masked, keep = mask_image(image, labels, invert=True)
    >>> masked
    array([[0.1, 0. , 0. ],
           [0.4, 0.5, 0. ]])
    >>> keep
    array([[ True, False, False],
           [ True,  True, False]])
    >>> int(mask_image(image, labels)[1].sum())
    3
    """
    image = np.asarray(image)
    if (labels is None) == (masking_image is None):
        raise InputError("mask_image needs exactly one of labels and masking_image")
    source = labels if labels is not None else masking_image
    source = np.asarray(source)
    shape = image.shape
    if source.shape != shape:
        # a colour image takes a mask of its first two axes for every channel
        if image.ndim == 3 and source.shape == shape[:2]:
            shape = shape[:2]
        else:
            raise InputError(f"mask shape {source.shape} differs from image shape {image.shape}")
    if labels is not None:
        if source.dtype.kind not in "uib":
            raise InputError(f"labels must be integers, got {source.dtype}")
        keep = source == 0 if invert else source > 0
    else:
        keep = source if source.dtype == bool else source > 0.5
        if invert:
            keep = keep == 0
    if mask is not None:
        keep = np.logical_and(keep, _bool_like(mask, shape, "mask").astype(bool))
    out = image.copy()
    out[~keep] = 0
    return out, keep


#: numpy 1.x (CellProfiler 4.2.8's) reduces a long array in buffers of this many elements
_BUFFER = 8192


def _numpy1_sum(x: np.ndarray):
    """``numpy.sum`` of a 1-D float array as numpy 1.x computes it: a pairwise sum per buffer of
    8192 elements, the buffer sums added one after another (numpy 2 sums the whole array
    pairwise, which differs in float32 by a few ulps on a 1080 x 1080 image)."""
    k = x.size // _BUFFER
    parts = np.add.reduce(x[:k * _BUFFER].reshape(k, _BUFFER), axis=1)
    if x.size % _BUFFER:
        parts = np.append(parts, np.add.reduce(x[k * _BUFFER:]))
    return np.cumsum(parts)[-1]


def _numpy1_std(x: np.ndarray, total):
    """``numpy.std`` (population) in the array's precision, with numpy 1.x's sums."""
    n = x.size
    mean = (np.asarray([total]) / n).astype(x.dtype)  # numpy divides its float32 sum array in float32
    d = x - mean
    return np.sqrt(x.dtype.type(_numpy1_sum(d * d) / n))


def _percentiles(percentiles) -> list[int]:
    out = set()
    for p in percentiles:
        if isinstance(p, (bool, np.bool_)) or int(p) != p or not 0 <= p <= 100:
            raise InputError(f"percentile {p!r} is not an integer between 0 and 100")
        out.add(int(p))
    return sorted(out)


def image_intensity(image, mask=None, labels=None, *, percentiles=()) -> dict[str, float]:
    """CellProfiler's MeasureImageIntensity of one image.

    Parameters
    ----------
    image : (H, W) or (Z, H, W) array_like
        Float image (any range; NaN and infinities are ignored as CellProfiler does), or
        integers, divided by their type's maximum as CellProfiler loads them.
    mask : array_like of bool, optional
        The image's mask (True = measure the pixel), e.g. the second result of
        :func:`mask_image`.
    labels : array_like of int, optional
        "Measure the intensity only from areas enclosed by objects": only pixels with
        ``labels != 0`` are measured (all objects together).
    percentiles : sequence of int, optional
        "Calculate custom percentiles": integers 0..100, adding ``Intensity_Percentile_<N>``.

    Returns
    -------
    dict of str to float
        ``Intensity_<Statistic>`` (``Intensity_TotalIntensity``, ..., see
        :data:`IMAGE_INTENSITY_FEATURES`) without the image name; CellProfiler's column is
        ``Intensity_<Statistic>_<Image>``, with ``_<Objects>`` appended when ``labels`` is
        used.

    Raises
    ------
    InputError
        A mask or labels of another shape, a non-numeric image or a bad percentile.

    Notes
    -----
    The statistics are computed in the image's precision (float32 for a corrected image) on
    its pixels in row-major order, as CellProfiler does: the median and quartiles are those of
    ``numpy`` on the same array; the sums (total, mean, std) are summed as numpy 1.x does,
    pairwise within buffers of 8192 pixels, the buffers one after another. When pixels are selected but none of them is
    finite, CellProfiler 4.2.8 stops with an error; this returns the all-zero empty result.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.0, 0.25, 0.5], [0.75, 1.0, 1.0]])
    >>> stats = image_intensity(image)
    >>> stats["Intensity_TotalIntensity"], stats["Intensity_MedianIntensity"]
    (3.5, 0.625)
    >>> stats["Intensity_LowerQuartileIntensity"], stats["Intensity_PercentMaximal"]
    (0.3125, 33.333333333333336)
    >>> image_intensity(*mask_image(image, np.array([[0, 0, 0], [0, 1, 1]]), invert=True))["Intensity_TotalArea"]
    4.0
    >>> image_intensity(image, labels=np.array([[0, 0, 0], [0, 1, 1]]))["Intensity_MeanIntensity"]
    1.0
    """
    pixels = as_loaded(np.asarray(image))
    if pixels.ndim not in (2, 3):
        raise InputError(f"image must be 2-D or 3-D, got shape {pixels.shape}")
    wanted = _percentiles(percentiles)
    select = None
    if mask is not None:
        select = _bool_like(mask, pixels.shape, "mask").astype(bool)
    if labels is not None:
        inside = _bool_like(labels, pixels.shape, "labels") != 0
        select = inside if select is None else np.logical_and(inside, select)
    pixels = pixels.ravel() if select is None else pixels[select]
    if pixels.size:
        pixels = pixels[np.isfinite(pixels)]
    names = [f"Intensity_{f}" for f in IMAGE_INTENSITY_FEATURES] + [f"Intensity_Percentile_{p}" for p in wanted]
    n = pixels.size
    if n == 0:
        return dict.fromkeys(names, 0.0)
    total = _numpy1_sum(pixels)
    median = np.median(pixels)
    low, high = np.percentile(pixels, [25, 75])
    top = pixels.max()
    values = [
        total,
        float(total) / float(n),
        median,
        _numpy1_std(pixels, total),
        np.median(np.abs(pixels - median)),
        pixels.min(),
        top,
        n,
        100.0 * float(np.count_nonzero(pixels == top)) / float(n),
        low,
        high,
    ]
    if wanted:
        values += list(np.percentile(pixels, wanted))
    return {name: float(v) for name, v in zip(names, values)}
