"""How the seeder talks to the network (`SeedOptions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libtorrent as lt

from ccmirror import __version__


@dataclass(frozen=True)
class SeedOptions:
    """How the seeder talks to the network; defaults suit a server on a public address."""

    interfaces: tuple[str, ...] = ("0.0.0.0", "[::]")
    port: int = 6881  # 0: any free port (tests)
    dht: bool = True  # magnet links and trackerless peers need it
    lsd: bool = False  # local discovery: noise on a server LAN
    upnp: bool = False  # servers have their port open already; home users turn these on
    natpmp: bool = False
    upload_rate_limit: int = 0  # bytes per second, 0 = unlimited
    status_interval: float = 60.0
    rescan_interval: float = 60.0  # look for newly sealed or obsolete packs
    resume_interval: float = 900.0  # save resume data of changed torrents
    duration: float | None = None  # stop after this many seconds (tests, bench)

    def listen_interfaces(self) -> str:
        return ",".join(f"{iface}:{self.port}" for iface in self.interfaces)

    def settings(self) -> dict[str, Any]:
        return {
            "listen_interfaces": self.listen_interfaces(),
            "enable_dht": self.dht,
            "enable_lsd": self.lsd,
            "enable_upnp": self.upnp,
            "enable_natpmp": self.natpmp,
            "upload_rate_limit": self.upload_rate_limit,
            "user_agent": f"ccmirror/{__version__} libtorrent/{lt.__version__}",
            # Peers behind one NAT (carrier-grade NAT, a campus) share an address; without
            # this, a second one is dropped while the first connection is open.
            "allow_multiple_connections_per_ip": True,
            # A mirror seeds every pack at once; libtorrent's queue would idle all but 5.
            "active_seeds": 1_000_000,
            "active_limit": 1_000_000,
            "alert_mask": lt.alert_category.status
            | lt.alert_category.error
            | lt.alert_category.storage,
        }
