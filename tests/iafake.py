"""The test archive: `ccmirror.sample.archive.IAServer`, the loopback IA server of
`ccmirror demo`, as tests and benchmarks use it (faults and the real service's quirks).

Tests and bench/ import the server from here, never from `ccmirror.sample`, so what only
tests need lives with the tests.
"""

from __future__ import annotations

from ccmirror.sample.archive import IAServer, Request

__all__ = ["IAServer", "Request"]
