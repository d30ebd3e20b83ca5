"""The agent's one error type: a sentence that says what went wrong and how to fix it."""

from __future__ import annotations


class KleinBenchError(Exception):
    """A problem the user can fix. The CLI prints the message alone, never a traceback."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)
