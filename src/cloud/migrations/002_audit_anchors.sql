-- Latchkey cloud schema, version 2: the signed trim anchor a site's chain starts from.
-- A hub whose log was trimmed before its first sync starts at an anchor (throughSeq, hash) signed with
-- its device key (LK-AUDIT-ANCHOR-v1); the cloud keeps it so the stored chain verifies from it later
-- (verifyChain(anchor, events, checkpoints)). At most one per site: the one accepted at head seq 0.
CREATE TABLE audit_anchors (
  site_id      text PRIMARY KEY,
  through_seq  bigint NOT NULL,
  hash         text NOT NULL,
  at           bigint NOT NULL,
  signature    text NOT NULL
);
