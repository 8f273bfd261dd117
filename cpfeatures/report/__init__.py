"""The QC report: look at a run before trusting its numbers.

>>> from cpfeatures.report import build_report, overlay
>>> build_report("OUT.zarr", "report.html", scores="scores/")        # doctest: +SKIP
>>> overlay("plate/", "D08", 5, "D08_f5.png", store="OUT.zarr")        # doctest: +SKIP

:func:`build_report` writes one self-contained HTML file (figures as inline PNG
and SVG, one inline script, no external asset or request): run summary with
the error table, run time and versions, plate maps labelled with each well's
perturbation, image quality of every channel, flagged wells and per-well cards,
control separation (Z', mAP) and position effects, illumination functions,
segmentation overlays, feature distributions and, when given, Percent
Replicating / Matching and mAP. :func:`overlay` draws
one site as a channel composite with nuclei and cell outlines. The command line
equivalents are ``cpfeatures report`` and ``cpfeatures overlay``.
"""

from .html import SECTIONS, build_report
from .overlay import overlay, site_overlay

__all__ = ["build_report", "overlay", "site_overlay", "SECTIONS"]
