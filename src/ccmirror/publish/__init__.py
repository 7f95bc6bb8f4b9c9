"""Publishing, the one writer of public/: `run.publish` (torrents.json, index.html, metadata
dump), `torrents_json`, `site`, `withdrawn`, `metadata`.

This module imports nothing: pack asks `torrents_json` to render without importing
`run` (which reads packs), so the two packages never import each other in a circle.
"""
