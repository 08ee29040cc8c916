-- Schema version 10: leases for running several bot replicas on one database (issue 20, docs/replicas.md).
-- A lease names one job that only one replica may do at a time (the WebSocket: "websocket"). Its
-- holder keeps it by renewing it before expires_at (epoch ms); once it has expired any replica may
-- take it. epoch grows by one every time the lease changes hands and never goes back, so whoever
-- acted under an older epoch can be told apart (fencing). Every change is one compare-and-set
-- statement inside BEGIN IMMEDIATE.

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
