"""Load single-page microscope TIFFs (LZW-compressed uint16 from Harmony exports), local or from a URL."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tifffile

from ..errors import ImageError
from . import fs as _fs

__all__ = ["read_image", "read_header"]


def read_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a TIFF's first page, without decoding pixels.

    Raises
    ------
    ImageError
        The file is missing, not a TIFF, or its header is truncated.
    """
    path = path if _fs.is_url(path) else Path(_fs._local(path))
    try:
        with _open(path, header=True) as fh, tifffile.TiffFile(fh) as tif:
            page = tif.pages.first
            planes = _planes(tif)
            # a stack reports its planes first, so that a plate of them is refused as not single-plane
            return ((planes, *page.shape) if planes > 1 else tuple(page.shape)), np.dtype(page.dtype)
    except FileNotFoundError:
        raise ImageError("image file is missing", path) from None
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, KeyError) as exc:
        raise ImageError(f"not a readable TIFF ({_reason(exc)})", path) from None


def read_image(
    path: str | os.PathLike,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | str | None = None,
) -> np.ndarray:
    """Decode a single-plane TIFF, checking shape and dtype if given.

    Parameters
    ----------
    path : path-like or str
        The TIFF file, or its fsspec URL (``s3://...``; read by whoever calls,
        i.e. by the worker, retried on transient errors).
    shape, dtype : optional
        What the plate says every image is; a different file is an error.

    Returns
    -------
    ndarray
        The pixels as stored (uint16 for Phenix exports).

    Raises
    ------
    ImageError
        Missing, truncated or corrupt file, not a TIFF, more than one plane,
        or a shape/dtype different from the expected one.
    """
    path = path if _fs.is_url(path) else Path(_fs._local(path))
    try:
        with _open(path) as fh, tifffile.TiffFile(fh) as tif:
            planes = _planes(tif)
            image = tif.pages.first.asarray()
    except FileNotFoundError:
        raise ImageError("image file is missing", path) from None
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, KeyError, RuntimeError) as exc:
        raise ImageError(f"truncated or corrupt TIFF ({_reason(exc)})", path) from None
    except Exception as exc:  # imagecodecs raises its own error types on bad compressed data
        if type(exc).__module__.startswith("imagecodecs"):
            raise ImageError(f"truncated or corrupt TIFF ({_reason(exc)})", path) from None
        raise
    if planes > 1:  # taking the first plane of a Z stack or time series would measure a plane nobody chose
        raise ImageError(f"the TIFF holds {planes} planes (a Z stack or a time series?); cpfeatures reads one plane "
                         "per image file: export single planes (or a projection)", path)
    image = np.squeeze(image)
    if image.ndim != 2:
        raise ImageError(f"expected a single 2-D plane, got array of shape {image.shape}", path)
    if shape is not None and tuple(image.shape) != tuple(shape):
        raise ImageError(f"image is {image.shape[0]}x{image.shape[1]}, the plate's images are {shape[0]}x{shape[1]}", path)
    if dtype is not None and image.dtype != np.dtype(dtype):
        raise ImageError(f"image dtype is {image.dtype}, the plate's images are {np.dtype(dtype)}", path)
    return image


def _planes(tif) -> int:
    """Full-resolution images in a TIFF (reduced-resolution previews and masks do not count)."""
    n = len(tif.pages)
    if n == 1:
        return 1
    return 1 + sum(1 for i in range(1, n) if not getattr(tif.pages[i], "is_reduced", False)
                   and not getattr(tif.pages[i], "is_mask", False))


def _open(path, header: bool = False):
    """A local file, or a URL's bytes (``header``: only the blocks tifffile asks for)."""
    if isinstance(path, Path):
        return open(path, "rb")
    if header:
        return _fs.open_binary(path, partial=True)
    try:
        data = _fs.read_bytes(path)
    except FileNotFoundError:
        raise
    except OSError as exc:  # after the retries: the network or the server, not the file's content
        raise ImageError(f"cannot read image ({_reason(exc)})", path) from None
    return io.BytesIO(data)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."
