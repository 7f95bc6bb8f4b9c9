-- Tiers, plan and status (issue 12): every per-tier file figure reads a file's item, status,
-- verdict and sizes. This index holds exactly those, in item order, so the aggregates scan
-- it instead of the wide files table and look items up in rowid order (sequential pages).
-- Rows are appended at its right edge as a harvest adds items: cheap to maintain.
CREATE INDEX files_item_sums ON files (item_id, status, verdict, size, est_size, copy_of, compact);
-- Items by status and refusal reason (status) without a scan of the wide items table: the
-- 'ok' ones are counted from items_rank_ok (0015), the others from this partial index.
CREATE INDEX items_not_ok ON items (status, reason) WHERE status != 'ok';
