"""Publishing: torrents.json (`publish.torrents_json`), index.html, metadata dump."""

from ccmirror.publish.run import publish  # noqa: F401 (the entry point for sync)
