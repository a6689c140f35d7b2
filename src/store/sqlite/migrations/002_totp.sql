-- Latchkey edge store, schema version 2: authenticator-app (RFC 6238 TOTP) credentials.
-- The TOTP secret is never stored in clear: totp_sealed is AES-256-GCM under <data-dir>/secrets/totp-seal-key
-- (0x01 || 12-byte nonce || ciphertext || 16-byte tag, bound to the credential id; src/store/secret-seal.ts).
-- For type = 'totp' rows, match_key holds the credential id (a code is never looked up by value).

ALTER TABLE credentials ADD COLUMN totp_sealed BLOB;
ALTER TABLE credentials ADD COLUMN totp_algorithm TEXT;      -- SHA-1 | SHA-256 | SHA-512
ALTER TABLE credentials ADD COLUMN totp_digits INTEGER;      -- 6
ALTER TABLE credentials ADD COLUMN totp_step INTEGER;        -- seconds, 30
ALTER TABLE credentials ADD COLUMN require_pin INTEGER;      -- 1: PIN then code (Dual); 0: the code alone
ALTER TABLE credentials ADD COLUMN last_step INTEGER;        -- time step of the last accepted code (accept once)
