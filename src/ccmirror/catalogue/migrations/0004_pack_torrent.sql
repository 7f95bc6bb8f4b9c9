-- Packs: everything written into a pack's torrent is fixed when sealing starts, so a
-- rebuild (a lost .torrent, a crash mid-seal) gives the same bytes and info-hash even
-- after the manifest or the program version changed.
ALTER TABLE packs ADD COLUMN creator TEXT;
ALTER TABLE packs ADD COLUMN comment TEXT;
ALTER TABLE packs ADD COLUMN trackers TEXT;      -- JSON list
ALTER TABLE packs ADD COLUMN web_seeds TEXT;     -- JSON list
