"""The one exception type that carries user-facing errors."""

from __future__ import annotations

from typing import Any, Optional


class AttnError(Exception):
    """A problem the user can fix.

    The CLI prints it as one line, ``error: <message>``, and exits with ``code``:
    2 for bad usage or bad input, 1 for a failure while working (unwritable folder,
    full disk).
    """

    def __init__(self, message: str, code: int = 2, setting: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.setting = setting  # the library setting at fault: the CLI names its option instead

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # keep the exit code when raised in a worker process
        return (type(self), (self.message, self.code, self.setting))
