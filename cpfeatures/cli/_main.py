"""The ``cpfeatures`` command group: every command, each in the module of its group.

- :mod:`.plate` ``inspect``
- :mod:`.run` ``run``, ``crops``
- :mod:`.store` ``verify``, ``export``, ``config``
- :mod:`.profile` ``profile``, ``score``
- :mod:`.report` ``report``, ``overlay``

Every command turns a :class:`~cpfeatures.errors.CpfeaturesError` into a
one-line message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import warnings

import click

from .. import __version__
from ._common import _show_warnings
from .plate import inspect
from .profile import profile, score
from .report import overlay, report
from .run import crops, run
from .store import config, export, verify

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cpfeatures")
def main():
    """cpfeatures: Cell Painting plates to single-cell features, profiles and scores."""
    warnings.showwarning = _show_warnings


for _command in (inspect, run, crops, verify, export, config, profile, score, report, overlay):
    main.add_command(_command)
