/** Build the {@link CredentialIndex} decide() reads: O(1) lookup by PIN digest, card id and fingerprint slot. */
import type { CredentialIndex } from "./decide.ts";
import type {
  Credential,
  FingerprintCredential,
  PinCredential,
  RfidCredential,
  TotpCredential,
  User,
} from "./model.ts";

/** A mutable index the runtime keeps in step with the store. */
export interface MutableCredentialIndex extends CredentialIndex {
  readonly users: Map<string, User>;
  readonly byUser: Map<string, Credential[]>;
  readonly pins: Map<string, PinCredential[]>;
  readonly cards: Map<string, RfidCredential[]>;
  readonly fingerprints: Map<number, FingerprintCredential[]>;
  readonly totpByUser: Map<string, TotpCredential[]>;
  readonly totpAlone: TotpCredential[];
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
    totpByUser: new Map(),
    totpAlone: [],
  };
  for (const c of credentials) {
    if (!index.users.has(c.userId)) continue;
    push(index.byUser, c.userId, c);
    switch (c.type) {
      case "pin":
        push(index.pins, c.pinDigest, c);
        break;
      case "rfid":
        push(index.cards, c.cardId, c);
        break;
      case "fingerprint":
        push(index.fingerprints, c.slot, c);
        break;
      case "totp":
        push(index.totpByUser, c.userId, c);
        if (!c.requirePin) index.totpAlone.push(c);
        break;
    }
  }
  return index;
}

function swap<T extends { id: string }>(list: T[] | undefined, next: T): void {
  if (!list) return;
  const i = list.findIndex((x) => x.id === next.id);
  if (i >= 0) list[i] = next;
}

/** Replace a TOTP credential (same id) wherever the index holds it, e.g. after its `lastStep` moved on. */
export function replaceTotpCredential(index: MutableCredentialIndex, next: TotpCredential): void {
  swap(index.byUser.get(next.userId), next);
  swap(index.totpByUser.get(next.userId), next);
  swap(index.totpAlone, next);
}
