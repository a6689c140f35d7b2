-- Management operations and the cloud sync (docs/protocol/operations.md, docs/protocol/sync.md).

-- Every signed operation this hub holds: made here (origin 'local') or received (origin 'remote').
-- The exact signed bytes are kept; the state is the fold of the whole set (src/core/ops/merge.ts).
CREATE TABLE ops (
  op_id        TEXT PRIMARY KEY,        -- 32 hex: SHA-256(canonical)[0..16]
  hlc          TEXT NOT NULL,           -- 34-character text form (sorts as the stamps do)
  kind         TEXT NOT NULL,
  target       TEXT NOT NULL,
  actor        TEXT NOT NULL,           -- key id of the signer
  cose         BLOB NOT NULL,           -- COSE_Sign1
  origin       TEXT NOT NULL CHECK (origin IN ('local', 'remote')),
  cloud_acked  INTEGER NOT NULL DEFAULT 0,  -- 1 once the cloud said it holds it (or sent it)
  received_at  INTEGER NOT NULL         -- ms
) STRICT;
CREATE INDEX ops_order ON ops (hlc);
CREATE INDEX ops_unacked ON ops (cloud_acked, hlc);
