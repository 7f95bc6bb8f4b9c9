-- A re-harvest of the FMA source compares each batch of rows with one range of its items
-- by (source, source_id): their row fingerprints (catalogue/fma_load.range_prefixes),
-- then their statuses (range_counts). Read from the items table, that range is ~800
-- bytes a row (5 rows a page: 7.8 GB at 10M items, past any page cache a harvest has)
-- for 17 characters of each; this covering index holds what both read, ~75 bytes a row.
-- A harvest appends to it in source_id order (its new items come in track id order).
CREATE INDEX items_fingerprints ON items (source, source_id, fingerprint, status, reason);
