/**
 * What a lock knows after a phone's answer verified (spec: docs/protocol/link.md § "At the lock"): the
 * leaf key with its holder, rights and scope, the serial of every link, what the holder asked for and how
 * it expressed intent. The lock runtime turns this into a `decide()` attempt (source: phone) and an audit
 * event; the handshake itself grants nothing.
 */
import { type CryptoPort, toHex } from "../crypto.ts";
import { type DigitalKey, type KeyScope, keyId, type PublicKey } from "../keys/digital-key.ts";
import type { EpochMs, Milliseconds } from "../units.ts";
import type { Intent, LinkAction } from "./messages.ts";

export interface VerifiedPhoneKey {
  readonly source: "phone";
  /** What the holder asked for (unlock or lock); `decide()` checks the key's rights for it. */
  readonly action: LinkAction;
  readonly intent: Intent;
  /** The leaf key: the one the phone holds. */
  readonly key: DigitalKey;
  readonly holder: PublicKey;
  /** Key id of the holder key (first 16 bytes of SHA-256(u8(−alg) ‖ key)), hex. */
  readonly holderKeyId: string;
  readonly rights: number;
  readonly scope: KeyScope;
  /** Every link, root first (the last is {@link key}). */
  readonly links: readonly DigitalKey[];
  /** Serial (cti) of every link, root first, hex: what the audit log and revocation lists name. */
  readonly serials: readonly string[];
  /** The lock's time the chain was verified at. */
  readonly verifiedAt: EpochMs;
  /** Challenge sent → answer complete, on the lock's monotonic clock. */
  readonly roundTrip: Milliseconds;
}

/** Build the {@link VerifiedPhoneKey} of a verified chain and proof. Pure; expects a non-empty chain. */
export function verifiedPhoneKey(
  crypto: CryptoPort,
  links: readonly DigitalKey[],
  action: LinkAction,
  intent: Intent,
  verifiedAt: EpochMs,
  roundTrip: Milliseconds,
): VerifiedPhoneKey {
  const leaf = links[links.length - 1]!;
  return {
    source: "phone",
    action,
    intent,
    key: leaf,
    holder: leaf.holder,
    holderKeyId: toHex(keyId(crypto, leaf.holder)),
    rights: leaf.rights,
    scope: leaf.scope,
    links,
    serials: links.map((l) => toHex(l.serial)),
    verifiedAt,
    roundTrip,
  };
}
