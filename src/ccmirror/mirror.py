"""A mirror: its manifest, its resolved data directory and its catalogue (DESIGN §3)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ccmirror import catalogue
from ccmirror.fsutil import safe_join, safe_relpath
from ccmirror.lock import DataLock
from ccmirror.manifest import Manifest, load_manifest


@dataclass
class Mirror:
    manifest: Manifest
    db: sqlite3.Connection

    @property
    def data_dir(self) -> Path:
        return self.manifest.data_dir

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def packs_dir(self) -> Path:
        return self.data_dir / "packs"

    @property
    def torrents_dir(self) -> Path:
        return self.data_dir / "torrents"

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"

    def store_relpath(self, source: str, source_id: str, name: str) -> str:
        """`store/<source>/<item>/<file>`, relative to the data dir; refuses unsafe names."""
        rel = safe_relpath(f"{source}/{source_id}") / safe_relpath(name)
        return str(Path("store") / rel)

    def abspath(self, relpath: str) -> Path:
        """A catalogue-recorded relative path, resolved and kept inside the data dir."""
        return safe_join(self.data_dir, relpath)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_mirror(
    manifest_path: str | os.PathLike[str], data_dir: str | None = None, *, readonly: bool = False
) -> Mirror:
    """Load the manifest and open (creating or upgrading) the catalogue."""
    manifest = load_manifest(manifest_path, data_dir)
    db_path = manifest.data_dir / "catalogue.sqlite"
    if readonly and not db_path.exists():
        # A fresh mirror: create it so read-only commands answer with zeros.
        catalogue.connect(db_path).close()
    return Mirror(manifest, catalogue.connect(db_path, readonly=readonly))


def lock_data_dir(manifest: Manifest, wait: float = 0) -> DataLock:
    return DataLock(manifest.data_dir, wait)
