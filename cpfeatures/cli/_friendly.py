"""What every ``cpfeatures`` command shares: bad input becomes one line on stderr, not a traceback."""

from __future__ import annotations

import errno
import functools
import sys

import click

from ..errors import CpfeaturesError


#: errno values of an output that cannot take what is written: exit 3 (fix the cause, run again), as a store
_CANNOT_WRITE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG)


def friendly(func):
    """Run a command; print cpfeatures errors as one line and exit 2 (3 when the store cannot be written,
    the error's own ``exit_code`` when it has one: 1 for a damaged store).

    An operating-system error that reaches the command (an output folder that is read-only or full, a
    file that cannot be opened) is one line too, naming the file the system names: exit 3 when the
    output cannot be written, 2 otherwise.
    """

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
        except OSError as exc:
            click.echo(f"error: {_os_error(exc)}", err=True)
            text = str(exc)
            cannot_write = exc.errno in _CANNOT_WRITE or any(
                s in text for s in ("Read-only", "Permission denied", "No space left", "errno 13", "errno 30"))
            sys.exit(3 if cannot_write else 2)

    return wrapper


def _os_error(exc: OSError) -> str:
    """``<file>: <what the system says>`` on one line (pyarrow and h5py put the file in the text)."""
    text = " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    names = [n for n in (exc.filename, exc.filename2) if n]
    if names and not any(str(n) in text for n in names):
        return f"{names[0]}: {text}"
    return text
