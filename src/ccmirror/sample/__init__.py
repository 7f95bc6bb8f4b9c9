"""What `ccmirror demo` serves: a sample archive of real audio on a loopback IA server.

- `archive`: `IAServer`, a loopback HTTP server speaking the Internet Archive API as
  `internetarchive` calls it (with `handler`, its request handler, and `query`, the scrape
  API's query language). Tests extend it with faults and the real service's quirks
  (tests/iafake.py); nothing in the product talks to it except through a manifest `endpoint`.
- `audio`: real encoded audio with real tags (soundfile + mutagen).
- `demo_items`: the dozen items of the demo's sample archive.
"""
