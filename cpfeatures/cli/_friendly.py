"""What every ``cpfeatures`` command shares: bad input becomes one line on stderr, not a traceback."""

from __future__ import annotations

import functools
import sys

import click

from ..errors import CpfeaturesError


def friendly(func):
    """Run a command; print cpfeatures errors as one line and exit 2 (3 when the store cannot be written,
    the error's own ``exit_code`` when it has one: 1 for a damaged store)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from ..store import StoreWriteError

        try:
            return func(*args, **kwargs)
        except StoreWriteError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(3)
        except CpfeaturesError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))

    return wrapper
