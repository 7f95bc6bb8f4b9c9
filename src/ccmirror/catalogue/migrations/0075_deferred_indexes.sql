-- Indexes of items and files a bulk first load dropped to build once at its end
-- (catalogue/deferred.py): the index's name and its CREATE statement, recorded in the
-- transaction that drops it. A row left here by a killed load is built again by the next
-- connect() (catalogue/db.py) before anything reads.
CREATE TABLE deferred_indexes (
    name TEXT PRIMARY KEY,
    sql TEXT NOT NULL
);
