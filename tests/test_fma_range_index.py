"""The re-harvest's range compare reads the covering index items_fingerprints (0080), not
the items table (~800 bytes a row for the 17 characters of a fingerprint)."""

from __future__ import annotations

from ccmirror.catalogue import connect


def _plan(db, sql: str, params) -> str:
    return " | ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_range_queries_read_the_fingerprint_index_alone(tmp_path, monkeypatch):
    import ccmirror.catalogue.fma_load as fma_load

    db = connect(tmp_path / "catalogue.sqlite")
    seen: list[str] = []
    real = db.execute

    class Spy:
        def execute(self, sql, params=()):
            if sql.startswith("SELECT") and "source_id BETWEEN" in sql:
                seen.append(_plan(db, sql, params))
            return real(sql, params)

    fma_load.range_prefixes(Spy(), "000002", "002001")  # type: ignore[arg-type]
    fma_load.range_counts(Spy(), "000002", "002001")  # type: ignore[arg-type]
    assert len(seen) == 2
    for plan in seen:
        assert "COVERING INDEX items_fingerprints" in plan, plan
    db.close()
