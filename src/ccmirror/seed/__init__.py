"""Seeding: the built-in libtorrent seeder and the export of .torrent files to other clients."""

from __future__ import annotations

from ccmirror.seed.export import export_torrents
from ccmirror.seed.options import SeedOptions
from ccmirror.seed.run import seed
from ccmirror.seed.session import Seeder

__all__ = ["SeedOptions", "Seeder", "export_torrents", "seed"]
