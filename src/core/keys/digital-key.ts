/**
 * Digital keys and their delegation chains (groundwork for issue 4; spec draft: docs/protocol/digital-keys.md).
 *
 * A key is a COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392) of kind `key`, signed by its issuer:
 *
 *   iss (1)   the signer's key id (hex)            aud (3)  scope: "lock:<id>" or "site:<id>"
 *   nbf (5)   not before (NumericDate)             exp (4)  expiry (NumericDate)
 *   cti (7)   serial (1..64 bytes)
 *   lk.rights   (-65538) bitmask of {@link KeyRight}
 *   lk.holder   (-65539) the holder's public key: [alg, key bytes] (EdDSA: 32-byte Ed25519; ES256: 65-byte SEC1)
 *   lk.schedule (-65540) optional week-day windows [[daysMask, startMinute, endMinute], ...] (local time)
 *   lk.lease    (-65541) optional: the key needs a status ticket no older than this many seconds
 *
 * Delegation: the lock knows its owner's public key (the root). Link 0 is signed by the root; link i by
 * the holder of link i − 1, which must hold the `issueKeys` right. Each link may only narrow: rights a
 * subset, scope the same or from site to lock, [nbf, exp) inside its parent's, windows inside its
 * parent's, a lease no longer than its parent's. At most {@link MAX_CHAIN_LINKS} links.
 *
 * Pure: signatures through {@link CryptoPort}; time passed in.
 */
import type { CryptoPort } from "../crypto.ts";
import { concatBytes, toHex } from "../crypto.ts";
import {
  CoseAlg as Alg,
  type CoseAlg,
  type Sign1Signer,
  signSign1External,
  verifySign1,
} from "../envelope/cose-sign1.ts";
import {
  type CwtClaims,
  checkValidity,
  decodeClaims,
  EnvelopeKind,
  encodeClaims,
  type NumericDate,
  signCwt,
} from "../envelope/cwt.ts";
import { isLatchkeyError, LatchkeyError } from "../errors.ts";
import type { EpochMs, Seconds } from "../units.ts";

/** What a key allows. */
export const KeyRight = { Unlock: 1, Lock: 2, ManageUsers: 4, IssueKeys: 8 } as const;
export const ALL_KEY_RIGHTS = 15;
/** Latchkey's key claims (CWT private-use labels). */
export const KeyClaimLabel = { rights: -65538, holder: -65539, schedule: -65540, lease: -65541 } as const;
/** Longest delegation chain the lock verifies (owner → admin → … → holder). */
export const MAX_CHAIN_LINKS = 4;
/** Most week-day windows in one key. */
export const MAX_KEY_WINDOWS = 16;

/** A public key from the allow-list: EdDSA (Ed25519, 32 bytes raw) or ES256 (P-256, 65-byte SEC1 point). */
export interface PublicKey {
  readonly alg: CoseAlg;
  readonly key: Uint8Array;
}

export type KeyScope = { readonly kind: "lock" | "site"; readonly id: string };

/** A week-day window in the lock's local time: days (Matter DaysMaskMap) and [start, end) minutes of the day. */
export interface KeyWindow {
  readonly daysMask: number;
  readonly startMinute: number;
  readonly endMinute: number;
}

export interface DigitalKey {
  readonly serial: Uint8Array;
  readonly issuer: string;
  readonly holder: PublicKey;
  readonly scope: KeyScope;
  readonly nbf: NumericDate;
  readonly exp: NumericDate;
  readonly rights: number;
  readonly schedule: readonly KeyWindow[] | null;
  readonly leaseSeconds: number | null;
}

function invalid(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

/** Checks a public key's length against its algorithm (a mismatch is refused). */
export function assertPublicKey(pk: PublicKey): void {
  const want = pk.alg === Alg.EdDSA ? 32 : pk.alg === Alg.ES256 ? 65 : -1;
  if (want < 0)
    throw new LatchkeyError("LK_ENVELOPE_ALG", "key algorithm outside the allow-list (EdDSA, ES256)");
  if (
    !(pk.key instanceof Uint8Array) ||
    pk.key.length !== want ||
    (pk.alg === Alg.ES256 && pk.key[0] !== 4)
  ) {
    throw new LatchkeyError("LK_ENVELOPE_ALG", "the key does not fit its algorithm");
  }
}

/**
 * Ed25519 points of small order (orders 1, 2, 4, 8) and their non-canonical encodings, compared with the
 * sign bit cleared (as libsodium's `ge25519_has_small_order`). A holder key among them would verify a
 * forged signature (RFC 8032 § 5.1.7 does not exclude them), so keys naming one are refused.
 */
const ED25519_SMALL_ORDER: readonly string[] = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

const P256_P = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

function bigOf(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/**
 * {@link assertPublicKey}, and the key is a usable point: an Ed25519 key not of small order, a P-256 key
 * on the curve (SEC 1 § 3.2.2.1: coordinates below p, y² = x³ − 3x + b; the cofactor is 1). Checked where
 * a key enters (a key's holder when it is decoded, a root, a holder to issue to), not on every use.
 * @throws LatchkeyError LK_ENVELOPE_ALG
 */
export function assertUsablePublicKey(pk: PublicKey): void {
  assertPublicKey(pk);
  if (pk.alg === Alg.EdDSA) {
    const masked = pk.key.slice();
    masked[31] = masked[31]! & 0x7f;
    if (ED25519_SMALL_ORDER.includes(toHex(masked))) {
      throw new LatchkeyError("LK_ENVELOPE_ALG", "the Ed25519 key is a point of small order");
    }
    return;
  }
  const x = bigOf(pk.key.subarray(1, 33));
  const y = bigOf(pk.key.subarray(33, 65));
  const onCurve = x < P256_P && y < P256_P && (y * y - (x * x * x - 3n * x + P256_B)) % P256_P === 0n;
  if (!onCurve) throw new LatchkeyError("LK_ENVELOPE_ALG", "the P-256 key is not a point on the curve");
}

/** Key id: the first 16 bytes of SHA-256(u8(−alg) ‖ key). The kid of envelopes that key signs. */
export function keyId(crypto: CryptoPort, pk: PublicKey): Uint8Array {
  assertPublicKey(pk);
  return crypto.sha256(concatBytes(Uint8Array.of(-pk.alg), pk.key)).subarray(0, 16);
}

function scopeText(s: KeyScope): string {
  if ((s.kind !== "lock" && s.kind !== "site") || !/^[A-Za-z0-9_-]{1,64}$/.test(s.id)) {
    throw invalid("scope must be lock:<id> or site:<id>");
  }
  return `${s.kind}:${s.id}`;
}

function assertWindow(w: KeyWindow): void {
  const ok =
    Number.isInteger(w.daysMask) &&
    w.daysMask >= 1 &&
    w.daysMask <= 127 &&
    Number.isInteger(w.startMinute) &&
    Number.isInteger(w.endMinute) &&
    w.startMinute >= 0 &&
    w.endMinute <= 1440 &&
    w.startMinute < w.endMinute;
  if (!ok) throw invalid("a key window is days 1..127 and start < end within 0..1440 minutes");
}

/** The claims of a key (for {@link signCwt}). Throws LK_ENVELOPE_MALFORMED / LK_ENVELOPE_ALG. */
export function keyClaims(k: DigitalKey): CwtClaims {
  assertPublicKey(k.holder);
  if (!Number.isInteger(k.rights) || k.rights < 1 || k.rights > ALL_KEY_RIGHTS)
    throw invalid("rights out of range");
  if (!(k.nbf < k.exp)) throw invalid("a key must expire after it starts");
  const extra = new Map<number, unknown>([
    [KeyClaimLabel.rights, k.rights],
    [KeyClaimLabel.holder, [k.holder.alg, k.holder.key]],
  ]);
  if (k.schedule !== null) {
    if (k.schedule.length === 0 || k.schedule.length > MAX_KEY_WINDOWS) throw invalid("1 to 16 key windows");
    for (const w of k.schedule) assertWindow(w);
    extra.set(
      KeyClaimLabel.schedule,
      k.schedule.map((w) => [w.daysMask, w.startMinute, w.endMinute]),
    );
  }
  if (k.leaseSeconds !== null) {
    if (!Number.isInteger(k.leaseSeconds) || k.leaseSeconds < 60 || k.leaseSeconds > 366 * 86_400) {
      throw invalid("lease must be 60 s to 366 days");
    }
    extra.set(KeyClaimLabel.lease, k.leaseSeconds);
  }
  return {
    kind: EnvelopeKind.Key,
    iss: k.issuer,
    aud: scopeText(k.scope),
    nbf: k.nbf,
    exp: k.exp,
    cti: k.serial,
    extra,
  };
}

const isUint = (v: unknown, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;

/** A key from verified claims. Throws LK_ENVELOPE_MALFORMED (or LK_ENVELOPE_ALG for the holder key). */
export function keyFromClaims(c: CwtClaims): DigitalKey {
  if (c.kind !== EnvelopeKind.Key) throw invalid("not a key");
  if (c.iss === undefined || c.aud === undefined || c.nbf === undefined || c.exp === undefined || !c.cti) {
    throw invalid("a key needs iss, aud, nbf, exp and cti");
  }
  const m = /^(lock|site):([A-Za-z0-9_-]{1,64})$/.exec(c.aud);
  if (!m) throw invalid("aud must be lock:<id> or site:<id>");
  const extra = c.extra ?? new Map<number, unknown>();
  for (const label of extra.keys()) {
    if (!Object.values(KeyClaimLabel).includes(label as never)) throw invalid(`unknown key claim ${label}`);
  }
  const rights = extra.get(KeyClaimLabel.rights);
  if (!isUint(rights, ALL_KEY_RIGHTS) || rights === 0) throw invalid("lk.rights must be 1..15");
  const holder = extra.get(KeyClaimLabel.holder);
  if (!Array.isArray(holder) || holder.length !== 2 || !(holder[1] instanceof Uint8Array)) {
    throw invalid("lk.holder must be [alg, key]");
  }
  const pk: PublicKey = { alg: holder[0] as CoseAlg, key: holder[1] };
  assertUsablePublicKey(pk);
  let schedule: KeyWindow[] | null = null;
  const sch = extra.get(KeyClaimLabel.schedule);
  if (sch !== undefined) {
    if (!Array.isArray(sch) || sch.length === 0 || sch.length > MAX_KEY_WINDOWS) throw invalid("lk.schedule");
    schedule = sch.map((w) => {
      if (!Array.isArray(w) || w.length !== 3 || !w.every((x) => isUint(x, 1440)))
        throw invalid("lk.schedule");
      const win = { daysMask: w[0] as number, startMinute: w[1] as number, endMinute: w[2] as number };
      assertWindow(win);
      return win;
    });
  }
  const lease = extra.get(KeyClaimLabel.lease);
  if (lease !== undefined && !isUint(lease, 366 * 86_400)) throw invalid("lk.lease");
  if (!(c.nbf < c.exp)) throw invalid("a key must expire after it starts");
  return {
    serial: c.cti,
    issuer: c.iss,
    holder: pk,
    scope: { kind: m[1] as "lock" | "site", id: m[2]! },
    nbf: c.nbf,
    exp: c.exp,
    rights,
    schedule,
    leaseSeconds: lease === undefined ? null : (lease as number),
  };
}

/** Sign a key with the issuer's private key (the issuer's kid and `iss` are derived from `issuerPublic`). */
export function issueKey(
  crypto: CryptoPort,
  issuer: { readonly alg: CoseAlg; readonly privateKey: Uint8Array; readonly publicKey: Uint8Array },
  k: Omit<DigitalKey, "issuer">,
): Uint8Array {
  const kid = keyId(crypto, { alg: issuer.alg, key: issuer.publicKey });
  const signer: Sign1Signer = { alg: issuer.alg, kid, privateKey: issuer.privateKey };
  return signCwt(crypto, signer, keyClaims({ ...k, issuer: toHex(kid) }));
}

/**
 * {@link issueKey} with an issuer whose private key stays in a key store (the owner's root in the CLI's
 * SecureKeyStore, an admin's phone): `sign` gets the COSE Sig_structure and returns the 64-byte signature.
 */
export function issueKeyExternal(
  crypto: CryptoPort,
  issuer: {
    readonly alg: CoseAlg;
    readonly publicKey: Uint8Array;
    sign(data: Uint8Array): Promise<Uint8Array>;
  },
  k: Omit<DigitalKey, "issuer">,
): Promise<Uint8Array> {
  const kid = keyId(crypto, { alg: issuer.alg, key: issuer.publicKey });
  const claims = keyClaims({ ...k, issuer: toHex(kid) });
  return signSign1External({ alg: issuer.alg, kid, sign: (d) => issuer.sign(d) }, encodeClaims(claims));
}

/** Why a chain is refused. Stable ids (they go to the audit log). */
export type KeyRefusal =
  | "malformed"
  | "signature"
  | "expired"
  | "not_yet_valid"
  | "wrong_lock"
  | "widened"
  | "no_issue_right"
  | "chain_too_long"
  | "lease_stale";

export interface ChainContext {
  readonly lockId: string;
  readonly siteId: string;
  readonly now: EpochMs;
  readonly skew: Seconds;
  /** When the newest valid status ticket for the holder was issued (lease keys); null if none. */
  readonly statusTicketAt?: EpochMs | null;
}

export type ChainResult =
  | { readonly ok: true; readonly key: DigitalKey; readonly links: readonly DigitalKey[] }
  | { readonly ok: false; readonly reason: KeyRefusal; readonly link: number };

function windowInside(child: KeyWindow, parent: readonly KeyWindow[]): boolean {
  return parent.some(
    (p) =>
      (child.daysMask & ~p.daysMask) === 0 &&
      child.startMinute >= p.startMinute &&
      child.endMinute <= p.endMinute,
  );
}

/** Does `child` only narrow `parent`? */
function narrows(parent: DigitalKey, child: DigitalKey): boolean {
  if ((child.rights & ~parent.rights) !== 0) return false;
  if (parent.scope.kind === "lock" && (child.scope.kind !== "lock" || child.scope.id !== parent.scope.id))
    return false;
  if (parent.scope.kind === "site" && child.scope.kind === "site" && child.scope.id !== parent.scope.id)
    return false;
  if (child.nbf < parent.nbf || child.exp > parent.exp) return false;
  if (parent.schedule !== null) {
    if (child.schedule === null || !child.schedule.every((w) => windowInside(w, parent.schedule!)))
      return false;
  }
  if (
    parent.leaseSeconds !== null &&
    (child.leaseSeconds === null || child.leaseSeconds > parent.leaseSeconds)
  ) {
    return false;
  }
  return true;
}

function refusalOf(e: unknown): KeyRefusal {
  if (isLatchkeyError(e, "LK_ENVELOPE_SIGNATURE")) return "signature";
  if (isLatchkeyError(e, "LK_ENVELOPE_EXPIRED"))
    return e.detail === "not yet valid" ? "not_yet_valid" : "expired";
  return "malformed";
}

/**
 * Verify a delegation chain offline: link 0 signed by `root` (the owner key registered at the lock), each
 * further link by its parent's holder, every link inside its validity window (± skew) and narrowing its
 * parent; the last link's scope must name this lock or its site; lease keys need a fresh status ticket.
 * Work: one signature verification per link. Never throws for any input bytes.
 */
export function verifyKeyChain(
  crypto: CryptoPort,
  root: PublicKey,
  chain: readonly Uint8Array[],
  ctx: ChainContext,
  cache?: VerifiedLinkCache,
): ChainResult {
  if (chain.length === 0) return { ok: false, reason: "malformed", link: 0 };
  if (chain.length > MAX_CHAIN_LINKS) return { ok: false, reason: "chain_too_long", link: MAX_CHAIN_LINKS };
  const links: DigitalKey[] = [];
  let signerKey: PublicKey = root;
  for (let i = 0; i < chain.length; i++) {
    let k: DigitalKey;
    try {
      const expectKid = keyId(crypto, signerKey);
      // A link's signature and decoding depend only on its bytes and its signer: cacheable.
      const cacheKey = cache ? `${toHex(crypto.sha256(chain[i]!))}|${toHex(expectKid)}` : "";
      const hit = cache?.get(cacheKey);
      if (hit) k = hit;
      else {
        const signer = signerKey;
        const { payload } = verifySign1(crypto, chain[i]!, (kid, alg) =>
          alg === signer.alg && kid.length === expectKid.length && kid.every((b, j) => b === expectKid[j])
            ? { alg: signer.alg, publicKey: signer.key }
            : null,
        );
        k = keyFromClaims(decodeClaims(payload));
        cache?.set(cacheKey, k);
      }
      // Time is checked on every use, cached or not (RFC 8392 nbf/exp with skew).
      checkValidity({ kind: EnvelopeKind.Key, nbf: k.nbf, exp: k.exp }, ctx.now, ctx.skew);
    } catch (e) {
      return { ok: false, reason: refusalOf(e), link: i };
    }
    const parent = links[i - 1];
    if (parent !== undefined) {
      if ((parent.rights & KeyRight.IssueKeys) === 0) return { ok: false, reason: "no_issue_right", link: i };
      if (!narrows(parent, k)) return { ok: false, reason: "widened", link: i };
    }
    links.push(k);
    signerKey = k.holder;
  }
  const leaf = links[links.length - 1]!;
  const here =
    (leaf.scope.kind === "lock" && leaf.scope.id === ctx.lockId) ||
    (leaf.scope.kind === "site" && leaf.scope.id === ctx.siteId);
  if (!here) return { ok: false, reason: "wrong_lock", link: links.length - 1 };
  const leases = links.map((l) => l.leaseSeconds).filter((x): x is number => x !== null);
  if (leases.length > 0) {
    const lease = Math.min(...leases);
    const at = ctx.statusTicketAt ?? null;
    if (at === null || ctx.now - at > lease * 1000 || at > ctx.now + ctx.skew * 1000) {
      return { ok: false, reason: "lease_stale", link: links.length - 1 };
    }
  }
  return { ok: true, key: leaf, links };
}

/**
 * A bounded cache of verified links (least recently used out first), so a lock that sees the same key
 * chain again verifies only what changes per unlock. Keyed by SHA-256 of the link's bytes and its
 * signer's key id; stores the decoded key. Validity times, narrowing, scope and leases are still checked
 * on every use; revocation is the caller's (check every serial of `links`).
 */
export class VerifiedLinkCache {
  private readonly entries = new Map<string, DigitalKey>();
  constructor(private readonly max = 1024) {}

  get(k: string): DigitalKey | undefined {
    const v = this.entries.get(k);
    if (v !== undefined) {
      this.entries.delete(k);
      this.entries.set(k, v);
    }
    return v;
  }

  set(k: string, v: DigitalKey): void {
    this.entries.delete(k);
    this.entries.set(k, v);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
