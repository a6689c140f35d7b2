/** Build the {@link CredentialIndex} decide() reads: O(1) lookup by PIN digest, card id and fingerprint slot. */
import type { CredentialIndex } from "./decide.ts";
import type { Credential, FingerprintCredential, PinCredential, RfidCredential, User } from "./model.ts";

/** A mutable index the runtime keeps in step with the store. */
export interface MutableCredentialIndex extends CredentialIndex {
  readonly users: Map<string, User>;
  readonly byUser: Map<string, Credential[]>;
  readonly pins: Map<string, PinCredential[]>;
  readonly cards: Map<string, RfidCredential[]>;
  readonly fingerprints: Map<number, FingerprintCredential[]>;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** Index `users` and their `credentials`. Credentials of unknown users are left out. */
export function buildCredentialIndex(
  users: readonly User[],
  credentials: readonly Credential[],
): MutableCredentialIndex {
  const index: MutableCredentialIndex = {
    users: new Map(users.map((u) => [u.id, u])),
    byUser: new Map(),
    pins: new Map(),
    cards: new Map(),
    fingerprints: new Map(),
  };
  for (const c of credentials) {
    if (!index.users.has(c.userId)) continue;
    push(index.byUser, c.userId, c);
    if (c.type === "pin") push(index.pins, c.pinDigest, c);
    else if (c.type === "rfid") push(index.cards, c.cardId, c);
    else push(index.fingerprints, c.slot, c);
  }
  return index;
}
