-- Tiers, plan and status sum the items a pack pinned to a tier (items.tier) apart from the
-- ranking's runs. Without an index on them that part read every entry of items_rank_ok
-- (tier is its last column) to find none: ~0.4 s per pass at 10M items. A harvest adds
-- no pinned item (packs pin them), so this partial index stays the size of what is packed.
CREATE INDEX items_pinned ON items (source, tier, popularity DESC, id)
WHERE status = 'ok' AND tier IS NOT NULL;
