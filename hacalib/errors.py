"""One error type for bad input, so callers can catch it and users see where the problem is.

May import: the standard library only.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data. The message always names the file, and the row or key when there is one."""

    def __init__(self, path: str | Path, problem: str, *, row: int | None = None, key: str | None = None):
        self.path = str(path)
        self.row = row
        self.key = key
        where = self.path
        if row is not None:
            where += f", row {row}"
        if key is not None:
            where += f", key {key!r}"
        super().__init__(f"{where}: {problem}")


class UsageError(ValueError):
    """A command-line argument or call parameter that cannot work; the message says what to change."""
