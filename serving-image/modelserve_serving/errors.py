"""Errors that end a command with a specific exit code and a one-line reason."""

from __future__ import annotations

from modelserve import contract


class ServingError(Exception):
    """A failure with a one-line, user-facing reason and the exit code that goes with it."""

    exit_code: int = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UsageError(ServingError):
    """Bad configuration or arguments: retrying cannot help."""

    exit_code = contract.EXIT_USAGE


class FetchError(ServingError):
    """The model could not be fetched. `transient` errors are worth another attempt."""

    exit_code = contract.EXIT_FETCH_FAILED

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


class LayoutError(ServingError):
    """The fetched files are not a TF Serving model (numeric version folders with a SavedModel)."""

    exit_code = contract.EXIT_BAD_LAYOUT


class SyncDegradedError(ServingError):
    """The store could not be reached for a whole poll; what is on disk stays served."""

    exit_code = contract.EXIT_SYNC_DEGRADED
