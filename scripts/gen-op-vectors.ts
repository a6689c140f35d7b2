/**
 * Writes test/vectors/operations.json (docs/protocol/operations.md § "Test vectors"): HLC stamps in both
 * encodings; one operation of every kind with its canonical encoding, id and COSE_Sign1 envelope signed
 * by a fixed Ed25519 owner key (Ed25519 is deterministic, RFC 8032, so the envelopes reproduce); and a
 * merge: an operation set given out of order, with the state it folds to.
 * Run: npx tsx scripts/gen-op-vectors.ts && npx biome format --write test/vectors/operations.json
 */
import { writeFileSync } from "node:fs";
import { toHex } from "../src/core/crypto.ts";
import { CoseAlg } from "../src/core/envelope/cose-sign1.ts";
import { NumericDate } from "../src/core/envelope/cwt.ts";
import { keyId, type PublicKey } from "../src/core/keys/digital-key.ts";
import { type Hlc, hlc, hlcToBytes, hlcToText } from "../src/core/ops/hlc.ts";
import { encodeReplicaState, foldOps, genesisOf } from "../src/core/ops/merge.ts";
import {
  encodeOperation,
  makeOperation,
  type OperationBody,
  operationToJson,
  signOperation,
} from "../src/core/ops/operation.ts";
import { nodeCrypto as c } from "../src/platform/node-crypto.ts";

const ownerSeed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const owner: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(ownerSeed) };
const ownerKid = keyId(c, owner);
const OWNER = toHex(ownerKid);
const secondSeed = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i);
const second: PublicKey = { alg: CoseAlg.EdDSA, key: c.ed25519PublicKey(secondSeed) };
const SECOND = toHex(keyId(c, second));

const T0 = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z
const LOCK_NODE = "00000000000000a1";
const CLOUD_NODE = "00000000000000c1";
const sealed = Uint8Array.from({ length: 60 }, (_, i) => (i * 37) & 0xff);
const at = (ms: number, counter = 0, node = LOCK_NODE): Hlc => hlc(T0 + ms, counter, node);
const base = (stamp: Hlc, actor = OWNER) =>
  ({ hlc: stamp, actor, scope: { kind: "lock", id: "front-door" } }) as const;

const bodies: { name: string; body: OperationBody }[] = [
  {
    name: "user.upsert (all fields)",
    body: {
      ...base(at(0)),
      kind: "user.upsert",
      target: "usr_ana",
      payload: {
        name: "Ana",
        userType: "unrestricted",
        userStatus: "occupiedEnabled",
        expiringTimeout: null,
      },
    },
  },
  {
    name: "credential.upsert (PIN, sealed)",
    body: {
      ...base(at(1)),
      kind: "credential.upsert",
      target: "crd_pin1",
      payload: { userId: "usr_ana", type: "pin", locks: "all", label: "Front PIN", sealed, duress: false },
    },
  },
  {
    name: "credential.upsert (card)",
    body: {
      ...base(at(2)),
      kind: "credential.upsert",
      target: "crd_card1",
      payload: {
        userId: "usr_ana",
        type: "rfid",
        locks: ["back-door", "front-door"],
        label: null,
        cardId: "uid:04a1b2c3d4e5f6",
      },
    },
  },
  {
    name: "schedule.set",
    body: {
      ...base(at(3)),
      kind: "schedule.set",
      target: "usr_ana",
      payload: {
        weekDay: [{ daysMask: 0b0111110, startHour: 8, startMinute: 0, endHour: 18, endMinute: 30 }],
        yearDay: [{ start: "2026-07-01T00:00", end: "2026-07-15T00:00" }],
      },
    },
  },
  {
    name: "mode.set",
    body: { ...base(at(4)), kind: "mode.set", target: "front-door", payload: { mode: "vacation" } },
  },
  {
    name: "role.set",
    body: { ...base(at(5)), kind: "role.set", target: SECOND, payload: { role: "admin", key: second } },
  },
  {
    name: "key.issue",
    body: {
      ...base(at(6)),
      kind: "key.issue",
      target: "0102030405060708",
      payload: {
        holder: SECOND,
        rights: 3,
        nbf: NumericDate(1_767_225_600),
        exp: NumericDate(1_798_761_600),
      },
    },
  },
  {
    name: "key.revoke",
    body: { ...base(at(7)), kind: "key.revoke", target: "0102030405060708", payload: {} },
  },
  {
    name: "guestcode.revoke",
    body: {
      ...base(at(8)),
      kind: "guestcode.revoke",
      target: "00112233445566ff",
      payload: { issuerId: "ana-phone", epoch: 2, dropAfter: 29_450_000 },
    },
  },
  {
    name: "owner.add",
    body: { ...base(at(9)), kind: "owner.add", target: SECOND, payload: { key: second } },
  },
  {
    name: "credential.remove",
    body: { ...base(at(10)), kind: "credential.remove", target: "crd_pin1", payload: {} },
  },
  { name: "user.remove", body: { ...base(at(11)), kind: "user.remove", target: "usr_ana", payload: {} } },
  { name: "owner.remove", body: { ...base(at(12)), kind: "owner.remove", target: OWNER, payload: {} } },
];

const signer = { alg: CoseAlg.EdDSA, kid: ownerKid, privateKey: ownerSeed };
const operations = bodies.map(({ name, body }) => {
  const op = makeOperation(c, body);
  return {
    name,
    op: operationToJson(op),
    canonicalHex: toHex(encodeOperation(c, body)),
    envelopeHex: toHex(signOperation(c, signer, body)),
  };
});

const stamps = [at(0), at(0, 1), at(0, 0xffff, CLOUD_NODE), hlc(0, 0, "0000000000000000")].map((h) => ({
  wallMs: h.wallMs,
  counter: h.counter,
  nodeId: h.nodeId,
  text: hlcToText(h),
  bytesHex: toHex(hlcToBytes(h)),
}));

// The outage story: the first owner hands the lock over to the second owner and leaves. During an
// outage the second owner removes Ana at the lock, then, in the cloud and later by its clock, sets the
// mode and renames Ana; the departed owner's rename of Ben arrives too. Given out of order. Ana stays
// removed, her PIN with her (the rename is skipped: "removed"); the mode is set; the departed owner's
// change is skipped ("unauthorized").
const story: OperationBody[] = [
  {
    ...base(at(600_000, 0, CLOUD_NODE), SECOND),
    kind: "user.upsert",
    target: "usr_ana",
    payload: { name: "Ana B." },
  },
  { ...base(at(0)), kind: "user.upsert", target: "usr_ana", payload: { name: "Ana" } },
  { ...base(at(450_000, 0, LOCK_NODE), SECOND), kind: "user.remove", target: "usr_ana", payload: {} },
  {
    ...base(at(1)),
    kind: "credential.upsert",
    target: "crd_pin1",
    payload: { userId: "usr_ana", type: "pin", locks: "all", label: null, sealed, duress: false },
  },
  { ...base(at(2)), kind: "user.upsert", target: "usr_ben", payload: { name: "Ben" } },
  { ...base(at(400_000)), kind: "owner.add", target: SECOND, payload: { key: second } },
  { ...base(at(400_001)), kind: "owner.remove", target: OWNER, payload: {} },
  {
    ...base(at(500_000, 0, CLOUD_NODE), SECOND),
    kind: "mode.set",
    target: "front-door",
    payload: { mode: "privacy" },
  },
  {
    ...base(at(500_001, 0, CLOUD_NODE)),
    kind: "user.upsert",
    target: "usr_ben",
    payload: { name: "Benjamin" },
  },
];
const genesis = genesisOf(c, [owner]);
const storyOps = story.map((b) => makeOperation(c, b));
const state = foldOps(genesis, storyOps);

const vectors = {
  description:
    "Management operations (docs/protocol/operations.md). hlc: stamps in text and 16-byte form. operations: canonicalHex = the CWT claims map (deterministic CBOR), op.id = hex(SHA-256(canonical)[0..16]), envelopeHex = COSE_Sign1 (EdDSA) by the owner key. merge: ops (canonical hex, out of order) folded from a genesis with the owner key; stateHex = encodeReplicaState.",
  owner: { seedHex: toHex(ownerSeed), publicKeyHex: toHex(owner.key), keyId: OWNER },
  second: { seedHex: toHex(secondSeed), publicKeyHex: toHex(second.key), keyId: SECOND },
  hlc: stamps,
  operations,
  merge: {
    genesisOwnerPublicKeysHex: [toHex(owner.key)],
    opsHex: story.map((b) => toHex(encodeOperation(c, b))),
    summary: {
      owners: [...state.owners.keys()],
      users: [...state.users.values()],
      credentials: [...state.credentials.keys()],
      modes: Object.fromEntries(state.modes),
      skipped: Object.fromEntries(
        [...state.skipped].map(([id, why]) => [`${storyOps.findIndex((o) => o.id === id)}:${id}`, why]),
      ),
    },
    stateHex: toHex(encodeReplicaState(state)),
  },
};

writeFileSync(
  new URL("../test/vectors/operations.json", import.meta.url),
  `${JSON.stringify(vectors, null, 2)}\n`,
);
console.log(
  `wrote test/vectors/operations.json (${operations.length} operations, ${storyOps.length} merge ops)`,
);
