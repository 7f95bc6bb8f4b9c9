-- The file layout a hybrid torrent was made with (packs/torrent.py LAYOUT_*): a rebuild of
-- a lost .torrent must use the layout that was published. NULL: sealed before layouts were
-- recorded, i.e. libtorrent 2.x's canonical layout (1).
ALTER TABLE packs ADD COLUMN torrent_layout INTEGER;
-- A metadata torrent holds exactly two files (the JSON lines dump and the SQLite snapshot);
-- hybrid and v2 ones were recorded with libtorrent's pad entries counted as files.
UPDATE packs SET num_files = 2 WHERE is_metadata = 1 AND num_files > 2;
