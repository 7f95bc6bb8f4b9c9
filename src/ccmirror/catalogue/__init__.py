"""The catalogue: one SQLite database per mirror (DESIGN §3)."""

from ccmirror.catalogue.db import connect, transaction, utcnow

__all__ = ["connect", "transaction", "utcnow"]
