-- Offline guest codes (docs/protocol/guest-codes.md).

-- Who may issue codes on a lock. The issuer key is derived from the hub's guest-code secret at load
-- (HKDF over lock id, issuer id and epoch); it is never stored here.
CREATE TABLE guest_code_issuers (
  lock_id    TEXT NOT NULL,
  issuer_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  epoch      INTEGER NOT NULL,           -- codes of older epochs no longer decode
  created_at INTEGER NOT NULL,
  PRIMARY KEY (lock_id, issuer_id)
) STRICT;

-- Per-code state: only codes granted with a limit (one-time, use-limited, first-use) or revoked.
-- Rows are pruned once drop_after (a local minute of the lock's zone) has passed on a trusted clock.
CREATE TABLE guest_code_state (
  lock_id       TEXT NOT NULL,
  issuer_id     TEXT NOT NULL,
  epoch         INTEGER NOT NULL,
  code_id       TEXT NOT NULL,           -- 16 hex digits (docs/protocol/guest-codes.md § 4)
  revoked       INTEGER NOT NULL,        -- 0 | 1
  uses          INTEGER NOT NULL,
  first_used_at INTEGER,                 -- ms since epoch
  drop_after    INTEGER NOT NULL,        -- local minute
  PRIMARY KEY (lock_id, issuer_id, epoch, code_id)
) STRICT;

CREATE INDEX guest_code_state_drop ON guest_code_state (lock_id, drop_after);

-- Codes issued through the hub's API (and names registered for codes issued offline): what the console
-- lists. Never the digits. Pruned 90 days after drop_after.
CREATE TABLE guest_code_ledger (
  lock_id    TEXT NOT NULL,
  issuer_id  TEXT NOT NULL,
  epoch      INTEGER NOT NULL,
  code_id    TEXT NOT NULL,
  name       TEXT NOT NULL,
  kind       TEXT NOT NULL,
  valid_from TEXT NOT NULL,              -- local YYYY-MM-DDTHH:MM
  valid_to   TEXT NOT NULL,
  drop_after INTEGER NOT NULL,           -- local minute
  issued_at  INTEGER NOT NULL,
  PRIMARY KEY (lock_id, issuer_id, epoch, code_id)
) STRICT;
