-- Fetch backoff (a file whose bytes never match is not downloaded again on every run).
-- fail_streak: consecutive runs whose download of this file failed with an answer from
-- the source (mismatch, HTTP error); 0 after a success or a change at the source.
-- last_attempt: when a download of this file was last tried (UTC, ISO 8601).
ALTER TABLE files ADD COLUMN fail_streak INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN last_attempt TEXT;
