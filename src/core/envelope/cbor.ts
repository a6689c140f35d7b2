/**
 * Deterministic CBOR for the signed envelope (spec: docs/protocol/envelope.md § "Deterministic CBOR").
 *
 * - {@link encodeDeterministic} writes RFC 8949 § 4.2.1 "core deterministic encoding": preferred
 *   serialization (shortest argument for every integer, length and tag), definite lengths only, and map
 *   keys sorted bytewise by their encoded form (cborg's `rfc8949EncodeOptions`).
 * - {@link decodeStrict} accepts only what {@link encodeDeterministic} writes: it refuses every other
 *   encoding of the same data and, as a final check, re-encodes what it decoded and compares bytes. So
 *   every accepted input has exactly one encoding, and `encodeDeterministic(decodeStrict(b))` equals `b`.
 *
 * The data model is deliberately small: `null`, booleans, safe integers (|n| ≤ 2^53 − 1), text, byte
 * strings, arrays, `Map`s whose keys are integers or text, and tags the caller allows (as cborg `Tagged`).
 * No `undefined`, no other simple values, no bigints, no floats unless asked for.
 */
import {
  type DecodeOptions,
  decode,
  encode,
  rfc8949EncodeOptions,
  Tagged,
  type Token,
  Tokenizer,
  Type,
} from "cborg";
import { LatchkeyError } from "../errors.ts";

export { Tagged };

/** Default size limit of one decoded item: 8 KiB. */
export const DEFAULT_MAX_BYTES = 8 * 1024;
/** Maximum nesting of arrays, maps and tags; the outermost container is depth 1. */
export const MAX_DEPTH = 16;

/** A value in the envelope's CBOR data model. */
export type CborValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly CborValue[]
  | ReadonlyMap<number | string, CborValue>
  | Tagged;

/** Options of {@link decodeStrict}. */
export interface DecodeStrictOptions {
  /** Refuse inputs longer than this many bytes with `LK_ENVELOPE_TOO_LARGE`. Default {@link DEFAULT_MAX_BYTES}. */
  readonly maxBytes?: number;
  /** Tag numbers to accept (decoded as `Tagged`); any other tag is refused. Default: none. */
  readonly tags?: readonly number[];
  /**
   * Accept floating-point numbers (preferred serialization: the shortest of float16/32/64 that keeps the
   * value). NaN and ±Infinity are always refused, and so is a float with an integral value, which a JS
   * number cannot tell apart from an integer. Default false.
   */
  readonly allowFloats?: boolean;
}

/** Options of {@link encodeDeterministic}. */
export interface EncodeOptions {
  /** Encode non-integral numbers as floats instead of refusing them. Default false. */
  readonly allowFloats?: boolean;
}

function malformed(detail: string): LatchkeyError {
  return new LatchkeyError("LK_ENVELOPE_MALFORMED", detail);
}

/** Refuse anything outside the data model before cborg sees it (cborg would encode more). */
function checkEncodable(value: unknown, depth: number, allowFloats: boolean): void {
  if (value === null || typeof value === "boolean" || typeof value === "string") return;
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return;
    // With floats allowed, cborg writes every other finite number as the shortest float that keeps it.
    if (allowFloats && Number.isFinite(value)) return;
    if (Number.isInteger(value)) throw malformed("cannot encode an integer beyond ±(2^53 − 1)");
    throw malformed("cannot encode a non-integer number");
  }
  if (value instanceof Uint8Array) return;
  if (Array.isArray(value) || value instanceof Map || value instanceof Tagged) {
    if (depth >= MAX_DEPTH) throw malformed(`cannot encode nesting deeper than ${MAX_DEPTH}`);
    if (value instanceof Tagged) {
      checkEncodable(value.value, depth + 1, allowFloats);
    } else if (value instanceof Map) {
      for (const [k, v] of value) {
        if (typeof k !== "string" && !(typeof k === "number" && Number.isSafeInteger(k))) {
          throw malformed("cannot encode a map key that is not an integer or text");
        }
        checkEncodable(v, depth + 1, allowFloats);
      }
    } else {
      for (const v of value) checkEncodable(v, depth + 1, allowFloats);
    }
    return;
  }
  throw malformed(`cannot encode a value of type ${value === undefined ? "undefined" : typeof value}`);
}

/**
 * Encode `value` in RFC 8949 § 4.2.1 core deterministic encoding. Throws `LK_ENVELOPE_MALFORMED` for a
 * value outside the data model (see the module doc), including nesting deeper than {@link MAX_DEPTH},
 * so it never writes what {@link decodeStrict} would refuse. Returns a fresh array.
 */
export function encodeDeterministic(value: unknown, options: EncodeOptions = {}): Uint8Array {
  checkEncodable(value, 0, options.allowFloats === true);
  // `-0` is an integer to cborg and encodes as 0, the only sensible reading. On Node cborg returns a
  // Buffer (whose slice() is a view on a shared pool): copy into a plain Uint8Array of our own.
  return new Uint8Array(encode(value, rfc8949EncodeOptions));
}

/**
 * Strict UTF-8 (RFC 3629 § 4): no overlong forms, no surrogates, nothing above U+10FFFF. A leading
 * byte-order mark is kept as U+FEFF, not stripped. Returns null for invalid input.
 */
function decodeUtf8Strict(b: Uint8Array): string | null {
  let s = "";
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let cp: number;
    let need: number;
    let min: number;
    if (c < 0x80) {
      s += String.fromCharCode(c);
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      need = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      need = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      need = 3;
      min = 0x10000;
    } else {
      return null;
    }
    if (i + need >= b.length) return null; // truncated sequence
    for (let k = 1; k <= need; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    s += String.fromCodePoint(cp);
    i += need + 1;
  }
  return s;
}

/** One open container while tokenizing: how many items it still expects, and whether it is a map. */
interface Frame {
  remaining: number;
  readonly isMap: boolean;
}

/**
 * Wraps cborg's tokenizer to enforce what cborg's options cannot: the nesting limit, allowed tags, no
 * floats, map keys that are integers or text, and strict UTF-8 (cborg's own text decoding replaces bad
 * sequences with U+FFFD and strips a leading BOM).
 */
class StrictTokenizer {
  readonly #inner: InstanceType<typeof Tokenizer>;
  readonly #tags: ReadonlySet<number>;
  readonly #allowFloats: boolean;
  readonly #stack: Frame[] = [];

  constructor(data: Uint8Array, options: DecodeOptions, tags: ReadonlySet<number>, allowFloats: boolean) {
    this.#inner = new Tokenizer(data, options);
    this.#tags = tags;
    this.#allowFloats = allowFloats;
  }

  done(): boolean {
    return this.#inner.done();
  }

  pos(): number {
    return this.#inner.pos();
  }

  next(): Token {
    const token = this.#inner.next();
    const type = token.type;
    const top = this.#stack[this.#stack.length - 1];
    if (top !== undefined) {
      if (top.isMap && top.remaining % 2 === 0 && !isKeyType(type)) {
        throw malformed("map key is not an integer or text");
      }
      top.remaining--;
    }
    if (Type.equals(type, Type.string)) {
      // cborg keeps the raw bytes (retainStringBytes) on every fresh string token; only its shared
      // token for the empty string (0x60) has none, and must not be mutated.
      const raw = token.byteValue;
      if (raw !== undefined) {
        const text = decodeUtf8Strict(raw);
        if (text === null) throw malformed("text string is not valid UTF-8");
        token.value = text;
      } else if (token.value !== "") {
        throw malformed("text string is not valid UTF-8");
      }
    } else if (Type.equals(type, Type.float)) {
      if (!this.#allowFloats) throw malformed("floating-point numbers are not allowed");
    } else if (Type.equals(type, Type.tag)) {
      if (!this.#tags.has(token.value as number))
        throw malformed(`tag ${String(token.value)} is not allowed`);
    }
    const isContainer =
      Type.equals(type, Type.array) || Type.equals(type, Type.map) || Type.equals(type, Type.tag);
    if (isContainer) {
      if (this.#stack.length + 1 > MAX_DEPTH) throw malformed(`nesting deeper than ${MAX_DEPTH}`);
      const n = token.value as number;
      const children = Type.equals(type, Type.tag) ? 1 : Type.equals(type, Type.map) ? 2 * n : n;
      if (children > 0) {
        this.#stack.push({ remaining: children, isMap: Type.equals(type, Type.map) });
        return token;
      }
    }
    // A complete item: close every container it completed.
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.remaining === 0) this.#stack.pop();
    return token;
  }
}

function isKeyType(type: Token["type"]): boolean {
  return Type.equals(type, Type.uint) || Type.equals(type, Type.negint) || Type.equals(type, Type.string);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decode one CBOR item that must be in deterministic form and fill `bytes` exactly. Maps decode to
 * `Map`, byte strings to fresh `Uint8Array`s, allowed tags to `Tagged`.
 *
 * Throws `LK_ENVELOPE_TOO_LARGE` when `bytes` exceeds `maxBytes`, and `LK_ENVELOPE_MALFORMED` for:
 * truncated input or trailing bytes; indefinite lengths; a non-shortest integer, length or tag argument;
 * duplicate map keys, keys out of bytewise order, or keys other than integers and text; `undefined` and
 * simple values other than false/true/null; floats (unless allowed); tags not allowed; integers beyond
 * ±(2^53 − 1); invalid UTF-8; nesting deeper than {@link MAX_DEPTH}.
 */
export function decodeStrict(bytes: Uint8Array, options: DecodeStrictOptions = {}): unknown {
  if (!(bytes instanceof Uint8Array)) throw malformed("input is not a byte array");
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) {
    throw new LatchkeyError(
      "LK_ENVELOPE_TOO_LARGE",
      `item is ${bytes.length} bytes; the limit is ${maxBytes}`,
    );
  }
  if (bytes.length === 0) throw malformed("empty input");
  const tags = options.tags ?? [];
  const allowFloats = options.allowFloats === true;
  const decodeOptions: DecodeOptions = {
    strict: true,
    allowIndefinite: false,
    allowUndefined: false,
    allowInfinity: false,
    allowNaN: false,
    allowBigInt: false,
    useMaps: true,
    rejectDuplicateMapKeys: true,
    retainStringBytes: true,
    tags: Tagged.preserve(...tags),
  };
  let value: unknown;
  try {
    value = decode(bytes, {
      ...decodeOptions,
      tokenizer: new StrictTokenizer(bytes, decodeOptions, new Set(tags), allowFloats),
    });
  } catch (e) {
    if (e instanceof LatchkeyError) throw e;
    // cborg's messages name the defect ("integer encoded in more bytes than necessary", ...) and never
    // echo more than a byte or a key of the input.
    throw malformed(`not well-formed strict CBOR (${e instanceof Error ? e.message : "decoder failed"})`);
  }
  let again: Uint8Array;
  try {
    again = encodeDeterministic(value, { allowFloats });
  } catch {
    throw malformed("not in deterministic encoding");
  }
  if (!bytesEqual(again, bytes)) throw malformed("not in deterministic encoding (RFC 8949 § 4.2.1)");
  return value;
}
