/**
 * Who may sign the objects that travel with phones: revocation lists, time tickets and status tickets
 * (spec: docs/protocol/digital-keys.md § "Signers of lists and tickets").
 *
 * Accepted signers:
 * - the **owner** key (the root registered at the lock when it was claimed), with an empty signer chain;
 * - a **delegate**: the holder of a key chain from the owner (1 to 4 links, verified by
 *   {@link verifyKeyChain}) whose leaf holds the `issueKeys` right, carries no lease, and whose scope
 *   covers the object's scope (a site key covers its site and its locks; a lock key only that lock).
 *   No link of that chain may be revoked.
 *
 * The chain travels next to the envelope (as a phone's own key chain does), never inside its payload,
 * so the payload is parsed only after its signature verified.
 *
 * Pure: signatures through {@link CryptoPort}; time passed in.
 */
import type { CryptoPort } from "../crypto.ts";
import { toHex } from "../crypto.ts";
import { DEFAULT_MAX_BYTES, decodeStrict, Tagged } from "../envelope/cbor.ts";
import { COSE_SIGN1_TAG, type CoseAlg, type Sign1Signer, verifySign1 } from "../envelope/cose-sign1.ts";
import { type CwtClaims, decodeClaims } from "../envelope/cwt.ts";
import { LatchkeyError } from "../errors.ts";
import type { EpochMs, Seconds } from "../units.ts";
import {
  KeyRight,
  type KeyScope,
  keyFromClaims,
  keyId,
  type PublicKey,
  verifyKeyChain,
} from "./digital-key.ts";

/** A signing party: its algorithm, private key (Ed25519 seed or P-256 PKCS#8 DER) and public key. */
export interface Issuer {
  readonly alg: CoseAlg;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** What the lock knows when it checks a list or ticket. */
export interface AuthorityContext {
  /** The owner's public key, registered at the lock when it was claimed. */
  readonly root: PublicKey;
  readonly lockId: string;
  readonly siteId: string;
  /** Allowed clock difference when checking the signer chain's validity. */
  readonly skew: Seconds;
  /** The signer's key chain (link 0 signed by the owner); empty or absent when the owner signs. */
  readonly signerChain?: readonly Uint8Array[];
  /** Is a key serial revoked? (the lock's current lists). Every link of the signer chain is checked. */
  readonly isRevoked?: (serial: Uint8Array) => boolean;
}

/** Who signed a verified object. */
export type SignerKind = "owner" | "delegate";

/** A verified envelope with its claims and signer. */
export interface VerifiedObject {
  readonly claims: CwtClaims;
  readonly signer: SignerKind;
  /** The serials of the signer chain's links (empty for the owner). */
  readonly signerSerials: readonly Uint8Array[];
}

const SCOPE_RE = /^(lock|site):([A-Za-z0-9_-]{1,64})$/;

/** `lock:<id>` or `site:<id>`; throws LK_ENVELOPE_MALFORMED for anything else. */
export function scopeToText(s: KeyScope): string {
  if (
    (s.kind !== "lock" && s.kind !== "site") ||
    typeof s.id !== "string" ||
    !/^[A-Za-z0-9_-]{1,64}$/.test(s.id)
  ) {
    throw new LatchkeyError("LK_ENVELOPE_MALFORMED", "scope must be lock:<id> or site:<id>");
  }
  return `${s.kind}:${s.id}`;
}

/** Parse `lock:<id>` or `site:<id>`; throws LK_ENVELOPE_MALFORMED. */
export function scopeFromText(text: string | undefined): KeyScope {
  const m = text === undefined ? null : SCOPE_RE.exec(text);
  if (!m) throw new LatchkeyError("LK_ENVELOPE_MALFORMED", "aud must be lock:<id> or site:<id>");
  return { kind: m[1] as "lock" | "site", id: m[2]! };
}

/** Is the object scope this lock or this lock's site? Throws LK_SCOPE_MISMATCH otherwise. */
export function checkScopeHere(scope: KeyScope, lockId: string, siteId: string): void {
  const here =
    (scope.kind === "lock" && scope.id === lockId) || (scope.kind === "site" && scope.id === siteId);
  if (!here) {
    throw new LatchkeyError(
      "LK_SCOPE_MISMATCH",
      `the object is for ${scope.kind} "${scope.id}", not this lock`,
    );
  }
}

/** The envelope signer of an issuer: its key id as kid. */
export function signerOf(crypto: CryptoPort, issuer: Issuer): { signer: Sign1Signer; iss: string } {
  const kid = keyId(crypto, { alg: issuer.alg, key: issuer.publicKey });
  return { signer: { alg: issuer.alg, kid, privateKey: issuer.privateKey }, iss: toHex(kid) };
}

function refused(detail: string, data?: Record<string, unknown>): LatchkeyError {
  return new LatchkeyError("LK_SIGNER_REFUSED", detail, data);
}

/** When to check the signer chain: a fixed time (the lock's), or a time read from the verified claims. */
export type ChainTime = EpochMs | ((claims: CwtClaims) => EpochMs);

/**
 * The holder key a link names, read *before* the link is verified. Used only to pick the candidate
 * signer of an object whose chain is checked at a time inside the object (time tickets); the whole chain
 * is verified right after and must name the same key.
 */
export function unverifiedHolder(link: Uint8Array): PublicKey {
  try {
    const d = decodeStrict(link, { maxBytes: DEFAULT_MAX_BYTES, tags: [COSE_SIGN1_TAG] });
    const body = d instanceof Tagged ? (d.value as unknown) : null;
    const payload = Array.isArray(body) && body.length === 4 ? (body[2] as unknown) : null;
    if (!(payload instanceof Uint8Array)) throw new Error("not a COSE_Sign1");
    return keyFromClaims(decodeClaims(payload)).holder;
  } catch {
    throw refused("the signer's key chain is refused (malformed at its last link)");
  }
}

function sameKey(a: PublicKey, b: PublicKey): boolean {
  return a.alg === b.alg && a.key.length === b.key.length && a.key.every((x, i) => x === b.key[i]);
}

/**
 * Verify an envelope signed by the owner or a delegate (see the module doc), then decode its claims.
 * The signer chain is checked at `chainTime`: the lock's time, or (a function) a time read from the
 * verified claims, as for a time ticket. In the first case the chain is checked before the envelope;
 * in the second the envelope is checked with the key the chain's last link names, then the chain.
 * The caller checks that the delegate covers the object's scope with {@link checkSignerCovers}.
 *
 * Throws LK_SIGNER_REFUSED (chain refused, no issue-keys right, revoked link), or the envelope's own
 * LK_ENVELOPE_* errors. `iss`, when present, must be the hex key id of the signer.
 */
export function verifyByAuthority(
  crypto: CryptoPort,
  bytes: Uint8Array,
  ctx: AuthorityContext,
  chainTime: ChainTime,
  maxBytes?: number,
): VerifiedObject & { readonly signerScope: KeyScope | null } {
  const chain = ctx.signerChain ?? [];
  let signerScope: KeyScope | null = null;
  let serials: Uint8Array[] = [];
  let signerKey: PublicKey = ctx.root;
  const checkChain = (at: EpochMs): PublicKey => {
    const r = verifyKeyChain(crypto, ctx.root, chain, {
      lockId: ctx.lockId,
      siteId: ctx.siteId,
      now: at,
      skew: ctx.skew,
      statusTicketAt: null,
    });
    if (!r.ok) throw refused(`the signer's key chain is refused (${r.reason} at link ${r.link})`, { ...r });
    if ((r.key.rights & KeyRight.IssueKeys) === 0) throw refused("the signer lacks the issue-keys right");
    for (const l of r.links) {
      if (ctx.isRevoked?.(l.serial) === true) throw refused("a link of the signer's key chain is revoked");
    }
    serials = r.links.map((l) => l.serial);
    signerScope = r.key.scope;
    return r.key.holder;
  };
  if (chain.length > 0) {
    signerKey =
      typeof chainTime === "function" ? unverifiedHolder(chain[chain.length - 1]!) : checkChain(chainTime);
  }
  const expectKid = keyId(crypto, signerKey);
  const key = signerKey;
  const limits = maxBytes === undefined ? {} : { maxBytes };
  const { payload, kid } = verifySign1(
    crypto,
    bytes,
    (k, alg) =>
      alg === key.alg && k.length === expectKid.length && k.every((b, j) => b === expectKid[j])
        ? { alg: key.alg, publicKey: key.key }
        : null,
    undefined,
    limits,
  );
  const claims = decodeClaims(payload, limits);
  if (claims.iss !== undefined && claims.iss !== toHex(kid)) {
    throw new LatchkeyError("LK_ENVELOPE_MALFORMED", "iss must be the signer's key id (hex)");
  }
  if (chain.length > 0 && typeof chainTime === "function") {
    if (!sameKey(checkChain(chainTime(claims)), signerKey))
      throw refused("the signer's key chain names another key");
  }
  return { claims, signer: chain.length > 0 ? "delegate" : "owner", signerSerials: serials, signerScope };
}

/** A delegate's scope must cover the object's: a site key covers everything here; a lock key only its lock. */
export function checkSignerCovers(signerScope: KeyScope | null, objectScope: KeyScope): void {
  if (signerScope === null || signerScope.kind === "site") return;
  if (objectScope.kind !== "lock" || objectScope.id !== signerScope.id) {
    throw refused("the signer's key does not cover the object's scope");
  }
}
