-- A follower's torrents (issue 16): what it took from a primary's torrents.json, and where
-- each stands. `held` torrents are verified and seeded; `quarantined` ones failed a check
-- (their payload is under quarantine/follow/<name>/); `dropped` ones were obsolete.
CREATE TABLE follow_torrents (
    btih TEXT PRIMARY KEY,                       -- v1 info-hash, hex, from the list
    name TEXT NOT NULL,                          -- the pack's folder under packs/
    tier INTEGER,                                -- the list's tier; NULL when it has none
    is_metadata INTEGER NOT NULL DEFAULT 0,
    data_size INTEGER NOT NULL DEFAULT 0,
    url TEXT,                                    -- where the .torrent was fetched from
    torrent_path TEXT,                           -- relative to the data dir, once checked
    state TEXT NOT NULL CHECK (state IN ('wanted', 'held', 'quarantined', 'dropped')),
    reason TEXT,                                 -- why quarantined, dropped or not complete
    listed_obsolete INTEGER NOT NULL DEFAULT 0,
    added_to_list_at TEXT,
    first_planned_at TEXT NOT NULL,
    held_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX follow_torrents_state ON follow_torrents (state);
