"""ccmirror: lawful, licence-checked, popularity-tiered BitTorrent mirrors of CC audio."""

__version__ = "0.1.0"
