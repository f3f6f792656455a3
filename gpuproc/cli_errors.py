"""One clean ``Error: ...`` line for a user's mistake on the command line; tracebacks with ``--debug``.

The root command group (``gpuproc``) is a :class:`UserErrorGroup`: a subcommand of any pipeline
that raises one of :data:`USER_ERRORS` (a bad job file or key, a missing or unreadable input, an
existing output) or is given a bad argument value (a job file that does not exist) ends with
``Error: <message>`` on stderr and exit code 1 (2 for a bad argument value, as click's usage errors). ``gpuproc --debug ...``
lets the exception propagate with its traceback.
"""

from __future__ import annotations

from typing import Any

import click

#: errors that describe the user's input (ConfigError is a ValueError); others keep their traceback
USER_ERRORS = (ValueError, OSError)


class BadValue(click.ClickException):
    """A bad argument or option value, reported as one ``Error:`` line with click's usage exit code."""

    exit_code = 2


class UserErrorGroup(click.Group):
    """A click group that reports :data:`USER_ERRORS` of its subcommands as one ``Error:`` line,
    unless its ``debug`` parameter is set."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:  # the message names the argument and the value: no usage block
            raise BadValue(exc.format_message()) from None
        except USER_ERRORS as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(one_line(exc)) from None


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(exc).split()) or type(exc).__name__
