"""Seeding: the built-in libtorrent seeder and the export of .torrent files to other clients."""

from __future__ import annotations

from ccmirror.seed.export import export_torrents
from ccmirror.seed.session import Seeder, SeedOptions, seed

__all__ = ["SeedOptions", "Seeder", "export_torrents", "seed"]
