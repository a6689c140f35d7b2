/** Signed management operations for the bridge's tests, as in test/hub/replica.test.ts. */
import { toHex } from "../../src/core/crypto.ts";
import { keyId } from "../../src/core/keys/digital-key.ts";
import { hlc } from "../../src/core/ops/hlc.ts";
import { type OperationBody, signOperation } from "../../src/core/ops/operation.ts";
import type { Hub } from "../../src/hub/hub.ts";
import { c, type Party } from "../support/link-fixtures.ts";

/** One operation signed by `by` for the hub's site. */
export function signOp(
  by: Party,
  hub: Hub,
  wallMs: number,
  node: string,
  body: Pick<OperationBody, "kind" | "target" | "payload">,
): Uint8Array {
  const kid = keyId(c, by.pk);
  return signOperation(c, { alg: by.alg, kid, privateKey: by.privateKey }, {
    ...body,
    hlc: hlc(wallMs, 0, node),
    actor: toHex(kid),
    scope: { kind: "site", id: hub.deviceId },
  } as OperationBody);
}

/** The owner's root grants a key the admin role. */
export function signRoleGrant(root: Party, hub: Hub, wallMs: number, key: Party["pk"]): Uint8Array {
  return signOp(root, hub, wallMs, "00000000000000f0", {
    kind: "role.set",
    target: toHex(keyId(c, key)),
    payload: { role: "admin", key },
  } as Pick<OperationBody, "kind" | "target" | "payload">);
}
