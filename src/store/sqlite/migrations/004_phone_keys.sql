-- Phone keys (docs/protocol/digital-keys.md, docs/protocol/link.md).

-- The owner's root key, registered when the hub is claimed (or later by the owner), and the link the
-- owner signed for the hub's signing key: the hub's signer chain for keys, lists and tickets.
CREATE TABLE key_authority (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  root_alg      INTEGER NOT NULL,        -- COSE alg: -8 EdDSA, -7 ES256
  root_key      BLOB NOT NULL,
  hub_link      BLOB NOT NULL,           -- COSE_Sign1 key: owner → hub signing key
  registered_at INTEGER NOT NULL,        -- ms since epoch
  registered_by TEXT NOT NULL
) STRICT;

-- Keys issued through the hub (a key delegated offline by a phone is not here: the lock names no user).
CREATE TABLE phone_keys (
  serial        TEXT PRIMARY KEY,        -- hex cti of the leaf
  user_id       TEXT REFERENCES users(id) ON DELETE SET NULL,
  name          TEXT NOT NULL,
  holder_key_id TEXT NOT NULL,           -- hex key id of the holder key
  scope         TEXT NOT NULL,           -- lock:<id> | site:<id>
  rights        INTEGER NOT NULL,
  nbf           INTEGER NOT NULL,        -- NumericDate (s)
  exp           INTEGER NOT NULL,
  lease         INTEGER,                 -- s, or NULL
  chain         BLOB NOT NULL,           -- CBOR array of the links, root first
  issued_by     TEXT NOT NULL,
  issued_at     INTEGER NOT NULL,        -- ms
  revoked_at    INTEGER                  -- ms, or NULL
) STRICT;

CREATE INDEX phone_keys_holder ON phone_keys (holder_key_id);

-- Revocation lists by scope: the newest the hub signed (holder 'hub') and the newest each lock applied
-- (holder = lock id), with the signer chain that verifies them.
CREATE TABLE revocation_lists (
  holder       TEXT NOT NULL,
  scope        TEXT NOT NULL,
  version      INTEGER NOT NULL,
  issued_at    INTEGER NOT NULL,         -- NumericDate (s)
  list         BLOB NOT NULL,
  signer_chain BLOB NOT NULL,            -- CBOR array
  PRIMARY KEY (holder, scope)
) STRICT;

-- What wallets did while offline, uploaded when they synced (idempotent per holder and event id).
CREATE TABLE wallet_events (
  holder_key_id TEXT NOT NULL,
  event_id      TEXT NOT NULL,
  at            INTEGER NOT NULL,        -- ms, the phone's clock
  lock_id       TEXT NOT NULL,
  action        TEXT NOT NULL,
  accepted      INTEGER NOT NULL,
  code          TEXT,
  serial        TEXT,
  received_at   INTEGER NOT NULL,
  PRIMARY KEY (holder_key_id, event_id)
) STRICT;
