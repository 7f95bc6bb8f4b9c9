"""Followers: volunteers who seed part of a primary's packs, through its torrents.json.

BitTorrent is the distributed engine (trackers, DHT, BEP 19 web seeds); this package is
the volunteer's side: read the list (`listing`), take the torrents most in need of seeders
within the space offered (`plan`), download them (`transfer`), check every byte and every
licence ourselves (`verify`) and keep the follower's rows (`state`). `ccmirror seed`
seeds what is held exactly as on a primary.
"""

from __future__ import annotations

from ccmirror.follow.run import follow_sync
from ccmirror.follow.status import follow_status

__all__ = ["follow_status", "follow_sync"]
