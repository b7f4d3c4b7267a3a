"""The one exception type that means "the user asked for something we cannot do", and the chain behind an error."""

from __future__ import annotations

from collections.abc import Iterator


class TunerError(Exception):
    """Bad input or an unusable environment.

    The CLI prints it as a single line and exits with status 2, with no
    traceback: the message itself must name the problem and the fix.
    """

    exit_code = 2


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and the errors behind it (libraries wrap one another's: Optuna's StorageInternalError, SQLAlchemy's)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__
