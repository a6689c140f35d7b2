/**
 * The one error base of Latchkey. Every error thrown at a boundary is a {@link LatchkeyError} with a
 * stable code (`LK_...`), and the code is part of the message so it shows in any log line.
 *
 * Each code carries whose fault it is:
 * - `caller`: bad input or a forbidden request; retrying the same thing fails the same way (HTTP 4xx).
 * - `internal`: a bug or a broken invariant in Latchkey (HTTP 500).
 * - `platform`: the machine or a dependency failed (disk, fsync, port in use); may succeed later.
 */
export const ErrorCodes = {
  // --- input and validation (caller) ---
  LK_INVALID_INPUT: { fault: "caller", http: 400, doc: "A request, file or frame failed validation." },
  LK_NOT_FOUND: {
    fault: "caller",
    http: 404,
    doc: "The named user, credential, lock or schedule does not exist.",
  },
  LK_CONFLICT: {
    fault: "caller",
    http: 409,
    doc: "The change conflicts with existing state (duplicate id, slot in use).",
  },
  LK_IMPORT_STALE: {
    fault: "caller",
    http: 409,
    doc: "An import names a user, credential or phone key this hub has removed or revoked since the export was taken: an older export never brings it back.",
  },
  LK_PAYLOAD_TOO_LARGE: { fault: "caller", http: 413, doc: "The request body exceeds the size limit." },
  // --- authentication and authorisation (caller) ---
  LK_UNAUTHENTICATED: { fault: "caller", http: 401, doc: "No valid API token was presented." },
  LK_FORBIDDEN: { fault: "caller", http: 403, doc: "The token's role does not allow this action." },
  LK_SETUP_CODE_INVALID: {
    fault: "caller",
    http: 401,
    doc: "The owner setup code is wrong or was already used.",
  },
  LK_RECOVERY_INVALID: {
    fault: "caller",
    http: 401,
    doc: "The recovery code is wrong, was already used, or its owner is no longer an enabled owner.",
  },
  LK_CHECK_RUNNING: {
    fault: "caller",
    http: 409,
    doc: "A readiness check is already running on this hub; wait for its report.",
  },
  LK_ALREADY_CLAIMED: {
    fault: "caller",
    http: 409,
    doc: "The hub already has an owner; claiming is a one-time step.",
  },
  // --- credentials (caller) ---
  LK_PIN_FORMAT: { fault: "caller", http: 400, doc: "A PIN must be 4 to 12 decimal digits." },
  LK_PIN_TOO_SHORT: {
    fault: "caller",
    http: 400,
    doc: "The PIN is shorter than the lock's current minimum length.",
  },
  LK_PIN_WEAK: {
    fault: "caller",
    http: 400,
    doc: "The PIN is repeated, sequential or among the most common PINs.",
  },
  LK_PIN_IN_USE: {
    fault: "caller",
    http: 409,
    doc: "Another user on this lock already has this PIN (no shared codes).",
  },
  LK_CARD_FORMAT: { fault: "caller", http: 400, doc: "A card UID or Wiegand frame is malformed." },
  LK_WIEGAND_PARITY: { fault: "caller", http: 400, doc: "A Wiegand frame failed its parity check." },
  LK_WIEGAND_FORMAT: {
    fault: "caller",
    http: 400,
    doc: "A Wiegand frame has an unsupported bit length or bad characters.",
  },
  LK_TOTP_INVALID: {
    fault: "caller",
    http: 400,
    doc: "An authenticator (TOTP) secret, parameter or otpauth:// URI is malformed or out of range.",
  },
  LK_TOTP_ALONE_LIMIT: {
    fault: "caller",
    http: 409,
    doc: "A lock already has the most authenticator (TOTP) credentials that open without a PIN (10).",
  },
  LK_GUESTCODE_INVALID: {
    fault: "caller",
    http: 400,
    doc: "A guest-code request, setting or revocation is malformed, or no LK-GC1 grid can express its window.",
  },
  LK_GUESTCODE_STATE_FULL: {
    fault: "caller",
    http: 409,
    doc: "The lock's guest-code state table is full: revoke the issuer's epoch instead of single codes.",
  },
  LK_ISSUER_UNKNOWN: {
    fault: "caller",
    http: 404,
    doc: "No guest-code issuer with this id is active on the lock (removed, or its epoch was raised).",
  },
  LK_SCHEDULE_INVALID: {
    fault: "caller",
    http: 400,
    doc: "A schedule has an empty or inverted window or an unknown time zone.",
  },
  // --- state (caller) ---
  LK_LOCK_BUSY: {
    fault: "caller",
    http: 409,
    doc: "The lock is moving or jammed and cannot take this command now.",
  },
  LK_MODE_FORBIDS: { fault: "caller", http: 409, doc: "The lock's OperatingMode forbids this command." },
  // --- data directory and process (platform) ---
  LK_DATA_DIR_LOCKED: {
    fault: "platform",
    http: 500,
    doc: "Another hub process is already running on this data directory.",
  },
  LK_DATA_DIR_INVALID: {
    fault: "platform",
    http: 500,
    doc: "The data directory is missing files or has unsafe permissions.",
  },
  LK_AUDIT_NOT_DURABLE: {
    fault: "platform",
    http: 503,
    doc: "The audit log could not be made durable (write or fsync failed). Fatal: the hub stops.",
  },
  LK_HUB_UNREACHABLE: {
    fault: "platform",
    http: 503,
    doc: "The CLI could not reach the hub's API (not running, wrong --url).",
  },
  LK_STORE_FAILED: { fault: "platform", http: 500, doc: "The local database failed." },
  // --- audit verification ---
  LK_AUDIT_CHAIN_BROKEN: {
    fault: "platform",
    http: 500,
    doc: "The audit hash chain or a checkpoint signature does not verify.",
  },
  // --- signed envelope: COSE_Sign1 + CWT (caller; spec docs/protocol/envelope.md) ---
  LK_ENVELOPE_MALFORMED: {
    fault: "caller",
    http: 400,
    doc: "A signed envelope is not well-formed or not deterministic CBOR, or has the wrong structure or claims.",
  },
  LK_ENVELOPE_ALG: {
    fault: "caller",
    http: 400,
    doc: "A signed envelope names an algorithm outside the allow-list, or its key does not fit the algorithm.",
  },
  LK_ENVELOPE_SIGNATURE: {
    fault: "caller",
    http: 401,
    doc: "A signed envelope's signature does not verify (or its key id is unknown).",
  },
  LK_ENVELOPE_EXPIRED: {
    fault: "caller",
    http: 401,
    doc: "A signed envelope is outside its validity window (before nbf or at/after exp, allowing for skew).",
  },
  LK_ENVELOPE_TOO_LARGE: { fault: "caller", http: 413, doc: "A signed envelope exceeds the size limit." },
  // --- phone <-> lock link: framing, handshake, session (caller unless noted; spec docs/protocol/link.md) ---
  LK_LINK_MALFORMED: {
    fault: "caller",
    http: 400,
    doc: "A link frame or message is not well-formed (bad header, out-of-order frame, wrong CBOR structure).",
  },
  LK_LINK_LIMIT: {
    fault: "caller",
    http: 413,
    doc: "A link limit was hit: message too large, too many frames or concurrent messages, counter exhausted.",
  },
  LK_LINK_TIMEOUT: {
    fault: "caller",
    http: 408,
    doc: "A link message was not completed, or a handshake step did not arrive, in time.",
  },
  LK_LINK_VERSION: {
    fault: "caller",
    http: 400,
    doc: "The peer speaks a link protocol version this side does not support.",
  },
  LK_LINK_PROTOCOL: {
    fault: "caller",
    http: 409,
    doc: "A link message arrived that the session's state does not expect (e.g. a second answer).",
  },
  LK_LINK_CLOSED: {
    fault: "platform",
    http: 503,
    doc: "The link transport closed before the exchange finished.",
  },
  LK_LINK_NONCE: {
    fault: "caller",
    http: 401,
    doc: "An answer names a challenge the lock does not have outstanding: replayed, used, expired or unknown.",
  },
  LK_LINK_TOO_LATE: {
    fault: "caller",
    http: 401,
    doc: "An answer arrived after the round-trip bound (relay resistance); the phone should retry closer.",
  },
  LK_LINK_DECRYPT: {
    fault: "caller",
    http: 401,
    doc: "A sealed link message does not authenticate (tampered, wrong session, reordered or replayed).",
  },
  LK_LINK_KEY_INVALID: {
    fault: "caller",
    http: 403,
    doc: "The phone's key chain is refused: malformed, bad signature, widened, no issue right or too long.",
  },
  LK_LINK_KEY_EXPIRED: {
    fault: "caller",
    http: 403,
    doc: "A key in the phone's chain is expired or not yet valid at the lock's time.",
  },
  LK_LINK_WRONG_LOCK: {
    fault: "caller",
    http: 403,
    doc: "The phone's key is for another lock or site (or the challenge came from an unexpected lock).",
  },
  LK_LINK_LEASE_STALE: {
    fault: "caller",
    http: 403,
    doc: "The phone's key is a lease key without a fresh enough status ticket.",
  },
  LK_LINK_REVOKED: {
    fault: "caller",
    http: 403,
    doc: "A key in the phone's chain is revoked (the lock's revocation check said so).",
  },
  LK_LINK_SIGNATURE: {
    fault: "caller",
    http: 401,
    doc: "The transcript signature does not verify with the key chain's holder key.",
  },
  LK_LINK_NO_INTENT: {
    fault: "caller",
    http: 403,
    doc: "The answer carries no fresh user action (passive unlock is off, or the action is too old).",
  },
  // --- phone-key objects: revocation lists, time and status tickets (caller; docs/protocol/digital-keys.md) ---
  LK_SIGNER_REFUSED: {
    fault: "caller",
    http: 403,
    doc: "A revocation list or ticket is signed neither by the owner nor by a valid, unrevoked key with the issue-keys right covering its scope.",
  },
  LK_SCOPE_MISMATCH: {
    fault: "caller",
    http: 403,
    doc: "A revocation list or ticket is for another lock or site (or another scope than the list it would replace).",
  },
  LK_REVOCATION_TOO_LARGE: {
    fault: "caller",
    http: 413,
    doc: "A revocation list has more than 2,048 ranges or exceeds 32 KiB: prune expired serials or allocate serials in runs.",
  },
  LK_REVOCATION_NOT_SUPERSET: {
    fault: "caller",
    http: 409,
    doc: "A delegate's revocation list drops a serial the lock's current list revokes; only the owner may remove entries.",
  },
  LK_TICKET_CHALLENGE: {
    fault: "caller",
    http: 401,
    doc: "A time ticket answers a challenge the lock did not issue, or arrived after the challenge's freshness bound.",
  },
  LK_TICKET_HOLDER: {
    fault: "caller",
    http: 403,
    doc: "A status ticket names another holder than the key's.",
  },
  LK_ACCESS_DENIED: {
    fault: "caller",
    http: 403,
    doc: "The lock's decision engine refused a verified phone key (the audit log names the reason).",
  },
  LK_CLOCK_UNTRUSTED: {
    fault: "caller",
    http: 409,
    doc: "The lock's clock is not trusted, so no time-limited key opens; a signed time ticket restores it.",
  },
  LK_KEYS_NOT_SET_UP: {
    fault: "caller",
    http: 409,
    doc: "No owner root key is registered at this hub: phone keys cannot be issued or verified yet.",
  },
  // --- management operations: HLC stamps, signed ops, merge (caller; docs/protocol/operations.md) ---
  LK_OP_MALFORMED: {
    fault: "caller",
    http: 400,
    doc: "A management operation or its HLC stamp is not well-formed: unknown kind or field, wrong type, value out of range, or an actor that is not the signer.",
  },
  LK_OP_CLOCK_DRIFT: {
    fault: "caller",
    http: 409,
    doc: "A management operation's HLC stamp is further ahead of this replica's wall clock than the allowed drift: the sender's clock is wrong.",
  },
  LK_OP_UNKNOWN_SIGNER: {
    fault: "caller",
    http: 409,
    doc: "A management operation is signed by a key this replica does not know yet (no owner.add or role.set for it has arrived): send the grant first.",
  },
  // --- sync and the cloud (docs/protocol/sync.md, docs/cloud.md) ---
  LK_SYNC_MALFORMED: {
    fault: "caller",
    http: 400,
    doc: "An MQTT sync payload is not UTF-8 JSON within the size limit or does not match its message schema.",
  },
  LK_SEAL_INVALID: {
    fault: "caller",
    http: 400,
    doc: "A sealed secret (a PIN or TOTP secret sealed to a lock's X25519 key) is malformed or does not open with this lock's key.",
  },
  LK_SITE_UNKNOWN: {
    fault: "caller",
    http: 404,
    doc: "No site with this id is registered in this cloud tenant (or the message names a site the cloud does not know).",
  },
  LK_CLOUD_NOT_DELEGATED: {
    fault: "caller",
    http: 409,
    doc: "The cloud's signing key has no admin role at this site: an owner must grant it (`latchkey cloud link`) before the cloud can make changes.",
  },
  LK_CLOUD_UNAVAILABLE: {
    fault: "platform",
    http: 503,
    doc: "The cloud's database or MQTT broker is unreachable; the request can be retried.",
  },
  // --- passphrase boxes and encrypted exports (caller; docs/formats/export.md § "Passphrase box") ---
  LK_PASSPHRASE_WEAK: {
    fault: "caller",
    http: 400,
    doc: "A passphrase to encrypt with is shorter than 12 characters (or longer than 1024): choose a longer one.",
  },
  LK_PASSPHRASE_WRONG: {
    fault: "caller",
    http: 400,
    doc: "A passphrase box does not open: the passphrase is wrong, or the box was modified (AES-GCM cannot tell which).",
  },
  LK_PASSPHRASE_BOX_MALFORMED: {
    fault: "caller",
    http: 400,
    doc: "A passphrase box is not well-formed: unknown version or algorithm, bad base64url, parameters out of bounds, or a box of another kind.",
  },
  LK_EXPORT_MODIFIED: {
    fault: "caller",
    http: 400,
    doc: "A version 2 export's content does not match the digest sealed in its secrets box: it was modified after it was exported.",
  },
  // --- ours ---
  LK_INTERNAL: { fault: "internal", http: 500, doc: "A bug in Latchkey: an invariant did not hold." },
} as const;

/** A stable error code such as `LK_PIN_WEAK`. */
export type ErrorCode = keyof typeof ErrorCodes;
/** Whose fault an error is: the caller's, Latchkey's, or the platform's. */
export type Fault = (typeof ErrorCodes)[ErrorCode]["fault"];

/** The error base. `message` is `"<code>: <detail>"`; `detail` is safe to show to a user (never a secret). */
export class LatchkeyError extends Error {
  override readonly name = "LatchkeyError";
  readonly code: ErrorCode;
  readonly detail: string;
  readonly data: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, detail: string, data?: Record<string, unknown>) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
    this.data = data;
  }

  /** Whose fault this is (see {@link ErrorCodes}). */
  get fault(): Fault {
    return ErrorCodes[this.code].fault;
  }

  /** The HTTP status this error maps to at the hub API. */
  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }
}

/** Type guard: is `e` a {@link LatchkeyError}, optionally with the given code? */
export function isLatchkeyError(e: unknown, code?: ErrorCode): e is LatchkeyError {
  return e instanceof LatchkeyError && (code === undefined || e.code === code);
}
