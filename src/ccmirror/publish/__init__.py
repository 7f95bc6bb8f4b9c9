"""Publishing: torrents.json (`publish.torrents_json`), index.html, metadata dump."""
