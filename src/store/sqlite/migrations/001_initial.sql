-- Latchkey edge store, schema version 1.
-- Secrets (device key, PIN-hash secret) are NOT here: they live in <data-dir>/secrets/, mode 0600.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE locks (
  id             TEXT PRIMARY KEY,
  name           TEXT NOT NULL,
  time_zone      TEXT NOT NULL,
  operating_mode TEXT NOT NULL,
  settings       TEXT NOT NULL,          -- JSON: LockSettings
  created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
  id                 TEXT PRIMARY KEY,
  name               TEXT NOT NULL,
  role               TEXT NOT NULL,
  user_type          TEXT NOT NULL,
  user_status        TEXT NOT NULL,
  week_day_schedules TEXT NOT NULL,      -- JSON array
  year_day_schedules TEXT NOT NULL,      -- JSON array
  expiring_timeout   INTEGER,            -- seconds
  first_used_at      INTEGER,            -- ms since epoch
  created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE credentials (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  type         TEXT NOT NULL,            -- pin | rfid | fingerprint
  match_key    TEXT NOT NULL,            -- PIN digest (HMAC hex), normalised card id, or fingerprint slot
  locks        TEXT NOT NULL,            -- JSON: "all" or array of lock ids
  label        TEXT,
  pin_length   INTEGER,
  duress       INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER
) STRICT;
CREATE INDEX credentials_match ON credentials(type, match_key);
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE lockouts (
  lock_id        TEXT NOT NULL,
  input          TEXT NOT NULL,
  failures       INTEGER NOT NULL,
  strikes        INTEGER NOT NULL,
  disabled_until INTEGER,
  PRIMARY KEY (lock_id, input)
) STRICT;

CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  token_hash   TEXT NOT NULL UNIQUE,     -- SHA-256 hex of the bearer token
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  label        TEXT NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE device_state (
  lock_id TEXT PRIMARY KEY,
  state   TEXT NOT NULL                  -- JSON: persisted runtime/simulator state (battery, door, bolt)
) STRICT;

CREATE TABLE audit_events (
  seq       INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  lock_id   TEXT,
  kind      TEXT NOT NULL,
  user_id   TEXT,                        -- denormalised from data.userId for filtering
  data      TEXT NOT NULL,               -- canonical JSON
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;
-- One secondary index only: every index is another page written and fsynced on the unlock path
-- (bench: three indexes cost ~50 % at p99). Time and kind filters scan backwards by seq.
CREATE INDEX audit_events_user ON audit_events(user_id, seq);

CREATE TABLE audit_checkpoints (
  seq       INTEGER PRIMARY KEY,
  hash      TEXT NOT NULL,
  at        INTEGER NOT NULL,
  signature TEXT NOT NULL
) STRICT;

CREATE TABLE audit_anchor (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  through_seq INTEGER NOT NULL,
  hash        TEXT NOT NULL,
  at          INTEGER NOT NULL,
  signature   TEXT NOT NULL
) STRICT;
