"""The data directory's write lock: flock(2) on <data_dir>/lock (DESIGN §3)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ccmirror.errors import LockHeld, UsageError
from ccmirror.fsutil import ensure_data_dir


class DataLock:
    """Held by every command that writes. `wait` seconds to wait for another run."""

    def __init__(self, data_dir: Path, wait: float = 0) -> None:
        self.path = Path(data_dir) / "lock"
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        ensure_data_dir(self.path.parent)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UsageError(f"cannot open the lock file {self.path}: {e.strerror or e}") from None
        deadline = time.monotonic() + max(0.0, self.wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockHeld(
                        f"another ccmirror run holds {self.path}"
                        + (f" (waited {self.wait:g}s)" if self.wait else "")
                        + "; try again later or pass --lock-wait SECONDS"
                    ) from None
                time.sleep(0.2)
        # Who holds it, for an operator looking at the file; informative only.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
