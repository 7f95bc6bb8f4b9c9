"""Exceptions that carry their own message and exit code (DESIGN §4).

The CLI's single top-level handler turns any of these into one line on stderr.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # finished, but some work failed: retry later
EXIT_USAGE = 2  # usage or manifest error
EXIT_LOCKED = 3  # another run holds the lock
EXIT_UNREACHABLE = 4  # a source could not be reached at all


class CCMirrorError(Exception):
    """Base class: `message` is shown as is, `exit_code` is returned to the shell."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(CCMirrorError):
    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """A manifest that cannot be used; the message names the file and the key."""

    def __init__(self, path: object, key: str | None, problem: str) -> None:
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + problem)
        self.path = path
        self.key = key


class WorkFailed(CCMirrorError):
    exit_code = EXIT_FAILED


class LockHeld(CCMirrorError):
    exit_code = EXIT_LOCKED


class SourceUnreachable(CCMirrorError):
    exit_code = EXIT_UNREACHABLE


class UnsafeName(CCMirrorError):
    """A name from a source that would escape its folder or is not a plain path."""

    exit_code = EXIT_FAILED
