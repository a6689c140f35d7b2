-- Latchkey cloud schema, version 1 (PostgreSQL 15+; the embedded default PGlite runs the same SQL).
-- The cloud is a replica and a relay, never the authority: it holds signed operations, the sites'
-- audit chains and what tenants configure. It never holds a PIN, a PIN hash or a TOTP secret.
-- Times are ms since the Unix epoch (bigint) so the hub's and the cloud's stamps compare directly.

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  created_at  bigint NOT NULL
);

-- API tokens: only SHA-256(token) is stored. Roles: owner (everything, tokens), admin (changes), viewer (read).
CREATE TABLE api_tokens (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
  label       text NOT NULL,
  token_hash  bytea NOT NULL UNIQUE,
  created_at  bigint NOT NULL,
  revoked_at  bigint
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

-- A site is one hub (its id is the hub's device id). Its keys are registered by the owner
-- (`latchkey cloud link`), never learnt from the broker.
CREATE TABLE sites (
  id                 text PRIMARY KEY,
  tenant_id          text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name               text NOT NULL,
  device_public_key  bytea NOT NULL,          -- Ed25519: audit checkpoints and anchors
  seal_public_key    bytea,                   -- X25519: PINs and TOTP secrets are sealed to it
  genesis            jsonb NOT NULL,          -- owner root keys: [{alg, publicKey(hex)}]
  online             boolean NOT NULL DEFAULT false,
  status_at          bigint,
  last_hello_at      bigint,
  created_at         bigint NOT NULL
);
CREATE INDEX sites_tenant ON sites (tenant_id);

-- Retained lock state as the hub last published it.
CREATE TABLE locks (
  site_id     text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  lock_id     text NOT NULL,
  state       jsonb NOT NULL,
  updated_at  bigint NOT NULL,
  PRIMARY KEY (site_id, lock_id)
);

-- The sites' audit chains. Ingest is idempotent on (site_id, seq).
CREATE TABLE audit_events (
  site_id    text NOT NULL,
  seq        bigint NOT NULL,
  at         bigint NOT NULL,
  lock_id    text,
  kind       text NOT NULL,
  data       jsonb NOT NULL,
  prev_hash  text NOT NULL,
  hash       text NOT NULL,
  PRIMARY KEY (site_id, seq)
);
CREATE INDEX audit_events_at ON audit_events (site_id, at);
CREATE INDEX audit_events_kind ON audit_events (kind, at);

CREATE TABLE audit_checkpoints (
  site_id    text NOT NULL,
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  at         bigint NOT NULL,
  signature  text NOT NULL,
  PRIMARY KEY (site_id, seq)
);

-- Per site: the last event verified and stored (the resume point), and the last signed checkpoint.
CREATE TABLE audit_heads (
  site_id          text PRIMARY KEY,
  seq              bigint NOT NULL,
  hash             text NOT NULL,
  checkpoint_seq   bigint NOT NULL DEFAULT 0,
  updated_at       bigint NOT NULL
);

-- Gaps, broken links, bad signatures seen on ingest: flagged, never silently stored.
CREATE TABLE chain_problems (
  id           bigserial PRIMARY KEY,
  site_id      text NOT NULL,
  seq          bigint NOT NULL,
  what         text NOT NULL,
  detected_at  bigint NOT NULL
);
CREATE INDEX chain_problems_site ON chain_problems (site_id);

-- Signed management operations (COSE_Sign1 bytes), deduplicated by operation id.
CREATE TABLE ops (
  site_id      text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  op_id        text NOT NULL,
  hlc          text NOT NULL,                 -- the 34-character text form: sorts as the stamps do
  kind         text NOT NULL,
  target       text NOT NULL,
  actor        text NOT NULL,                 -- key id of the signer
  cose         bytea NOT NULL,
  origin       text NOT NULL CHECK (origin IN ('hub', 'cloud')),
  received_at  bigint NOT NULL,
  PRIMARY KEY (site_id, op_id)
);
CREATE INDEX ops_order ON ops (site_id, hlc);

-- Operations the hub has acknowledged holding. Drift = ops with no row here.
CREATE TABLE op_acks (
  site_id   text NOT NULL,
  op_id     text NOT NULL,
  acked_at  bigint NOT NULL,
  PRIMARY KEY (site_id, op_id)
);
CREATE TABLE op_refusals (
  site_id      text NOT NULL,
  op_id        text NOT NULL,
  code         text NOT NULL,
  refused_at   bigint NOT NULL,
  PRIMARY KEY (site_id, op_id)
);

-- Alarms and hub-offline events to notify (written in the ingest transaction; delivered by webhooks).
CREATE TABLE notifications (
  id          bigserial PRIMARY KEY,
  tenant_id   text NOT NULL,
  site_id     text NOT NULL,
  lock_id     text,
  kind        text NOT NULL,                  -- alarm.forced_open, alarm.tamper, alarm.duress, alarm.battery_low, alarm.lockout, hub.offline, ...
  seq         bigint,                         -- the audit event, when there is one
  data        jsonb NOT NULL,
  created_at  bigint NOT NULL,
  UNIQUE (site_id, kind, seq)
);
CREATE INDEX notifications_tenant ON notifications (tenant_id, id);

CREATE TABLE webhooks (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  url         text NOT NULL,
  secret      text NOT NULL,                  -- HMAC-SHA-256 key for the signature header
  kinds       jsonb NOT NULL,                 -- notification kinds, or ["*"]
  created_at  bigint NOT NULL,
  disabled_at bigint
);

CREATE TABLE webhook_deliveries (
  webhook_id       text NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
  notification_id  bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         int NOT NULL DEFAULT 0,
  next_at          bigint NOT NULL,
  last_error       text,
  response_status  int,
  updated_at       bigint NOT NULL,
  PRIMARY KEY (webhook_id, notification_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
