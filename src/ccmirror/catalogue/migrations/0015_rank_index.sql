-- Tiers, plan and status rank 'ok' items per source by popularity (ties by id). This
-- index holds everything the ranking reads (tier: pinned by an earlier pack), so tier
-- boundaries and per-tier aggregates come from it without touching the table.
CREATE INDEX items_rank_ok ON items (source, popularity DESC, id, tier) WHERE status = 'ok';
-- A file's size estimated before fetch (FMA: bit rate x duration); `size`, once known,
-- wins. Plan and tiers count these bytes and say they are estimates.
ALTER TABLE files ADD COLUMN est_size INTEGER;
