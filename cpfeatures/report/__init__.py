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

The modules, from the page down:

- ``html``: the page (:func:`build_report`, :data:`SECTIONS`), assembled from
- ``context``: everything the sections show, read once (``ReportContext``, ``build_context``);
- the sections: ``summary``; ``heatmaps`` (plate maps, image quality); ``wells``
  (flags, per-well cards); ``controls`` (Z', mAP, position effects); ``images``
  (illumination, overlays); ``features`` (distributions, scores);
- what they use: ``data`` (one pass over the store's sites), ``qc`` (well table,
  flags, control and position statistics), ``wellmap`` (what is in each well),
  ``scores`` (reading score tables), ``sites`` (which sites to draw, drawing them),
  ``plates`` (finding a run's images), ``overlay`` (drawing one site), and
  ``figures``, ``svg``, ``markup``, ``layout`` (PNG figures, SVG plate maps, HTML, plate geometry).
"""

from .html import SECTIONS, build_report
from .overlay import overlay, site_overlay

__all__ = ["build_report", "overlay", "site_overlay", "SECTIONS"]
