/**
 * Canonical JSON for hashing: object keys sorted by UTF-16 code units, no whitespace, strings and
 * numbers as ECMAScript JSON.stringify writes them (RFC 8785 JCS for the values Latchkey uses:
 * strings, booleans, null, safe integers, finite numbers, arrays, plain objects).
 */
import { LatchkeyError } from "../errors.ts";

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [k: string]: JsonValue };

/** Encode `v` canonically. Throws LK_INVALID_INPUT for non-finite numbers, undefined, functions or other non-JSON values. */
export function canonicalJson(v: unknown): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "number":
      if (!Number.isFinite(v))
        throw new LatchkeyError("LK_INVALID_INPUT", "non-finite number in canonical JSON");
      return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
    }
    default:
      throw new LatchkeyError("LK_INVALID_INPUT", `value of type ${typeof v} cannot be encoded canonically`);
  }
}
