/** The signed envelope: COSE_Sign1 over deterministic CBOR with CWT claims (docs/protocol/envelope.md). */
export * from "./cbor.ts";
export * from "./cose-sign1.ts";
export * from "./cwt.ts";
