"""The result of importing a pipeline, and its TOML."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..config import validate
from ._parse import PipelineError, printable, read_pipeline
from ._translate import Finding, translate

__all__ = ["PipelineImport", "import_cppipe"]


@dataclass
class PipelineImport:
    """What a CellProfiler pipeline becomes in cpfeatures.

    Attributes
    ----------
    config : dict
        The settings (a complete config, as :func:`cpfeatures.config.load_config` returns).
    sources : list of str
        The pipeline files read.
    translated, not_needed, disabled, unsupported : list of Finding
        Every module, in one of the four lists (``unsupported`` names the setting and value).
    notes : list of str
        Differences that add columns without changing any (cpfeatures measures more).
    """

    config: dict
    sources: list[str]
    translated: list[Finding] = field(default_factory=list)
    not_needed: list[Finding] = field(default_factory=list)
    disabled: list[Finding] = field(default_factory=list)
    unsupported: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing that changes the numbers was left out."""
        return not self.unsupported

    def to_toml(self) -> str:
        """The settings as a TOML file, headed by comments saying where each module went.

        What was dropped (``--allow-unsupported``) is recorded in those comments, one line each.
        """
        import tomli_w

        lines = [f"cpfeatures settings imported from {', '.join(os.path.basename(s) for s in self.sources)}",
                 "(cpfeatures config --from-cppipe). Modules:"]
        for title, items in (("translated", self.translated), ("not needed", self.not_needed),
                             ("skipped (disabled)", self.disabled)):
            for f in items:
                lines.append(f"  {title}: {f.line()}")
        for f in self.unsupported:
            lines.append(f"  DROPPED (changes the numbers, not implemented): {f.line()}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        # each comment one line of text whatever the pipeline's names hold (a newline would end the comment)
        return "\n".join(f"# {printable(line)}" for line in lines) + "\n\n" + tomli_w.dumps(self.config)


def import_cppipe(analysis: str | os.PathLike, illum: str | os.PathLike | None = None) -> PipelineImport:
    """Translate a CellProfiler analysis pipeline (and its illumination pipeline) into settings.

    Parameters
    ----------
    analysis : path-like
        The analysis pipeline (``.cppipe`` text or JSON): segmentation and measurements.
    illum : path-like, optional
        The illumination pipeline (Resize, CorrectIlluminationCalculate): its settings
        become ``[illum]``. Without it the CPJUMP1 illumination settings are kept
        (or the functions come precomputed with a LoadData CSV / ``--illum``).

    Returns
    -------
    PipelineImport
        Check :attr:`PipelineImport.ok`: when False, ``unsupported`` lists what the
        settings leave out.

    Raises
    ------
    PipelineError
        A file that is not a readable pipeline.

    Examples
    --------
    >>> from cpfeatures.config import default_config
    >>> result = import_cppipe("../shared/reference/cpjump1_pipelines/CPJUMP1_analysis.cppipe",
    ...                        "../shared/reference/cpjump1_pipelines/CPJUMP1_illum.cppipe")  # doctest: +SKIP
    >>> result.ok, result.config == default_config()  # doctest: +SKIP
    (True, True)
    """
    modules = read_pipeline(analysis)
    illum_modules = read_pipeline(illum) if illum is not None else None
    state = translate(modules, illum_modules, analysis_path=analysis, illum_path=illum)
    state.notes = [printable(note) for note in state.notes]  # printed one a line on stderr and in the TOML
    sources = [os.fspath(analysis)] + ([os.fspath(illum)] if illum is not None else [])
    try:
        validate(state.config)
    except Exception as exc:  # a value the pipeline gives that the settings cannot hold
        raise PipelineError(f"the translated settings are invalid ({printable(exc)})", analysis) from None
    return PipelineImport(config=state.config, sources=sources, translated=state.translated,
                          not_needed=state.not_needed, disabled=state.disabled, unsupported=state.unsupported,
                          notes=state.notes)
