/** In-memory {@link AuditStore}: for tests and tools. Not durable. */

import {
  type AuditAnchor,
  type AuditCheckpoint,
  type AuditEvent,
  type AuditEventInput,
  chainEvent,
  GENESIS_HASH,
} from "../../core/audit/chain.ts";
import type { CryptoPort } from "../../core/crypto.ts";
import { matchesQuery } from "../audit-query.ts";
import type { AuditQuery, AuditStore } from "../audit-store.ts";

export class MemoryAuditStore implements AuditStore {
  private events: AuditEvent[] = [];
  private readonly cps = new Map<number, AuditCheckpoint>();
  private anchorRecord: AuditAnchor | null = null;

  constructor(private readonly crypto: CryptoPort) {}

  head(): { seq: number; hash: string } {
    const last = this.events.at(-1);
    if (last) return { seq: last.seq, hash: last.hash };
    return this.anchorRecord
      ? { seq: this.anchorRecord.throughSeq, hash: this.anchorRecord.hash }
      : { seq: 0, hash: GENESIS_HASH };
  }

  append(inputs: readonly AuditEventInput[]): AuditEvent[] {
    let { seq, hash } = this.head();
    const out: AuditEvent[] = [];
    for (const e of inputs) {
      const ev = chainEvent(this.crypto, seq, hash, e);
      out.push(ev);
      seq = ev.seq;
      hash = ev.hash;
    }
    this.events.push(...out);
    return out;
  }

  query(q: AuditQuery): AuditEvent[] {
    const src = q.descending ? [...this.events].reverse() : this.events;
    const out: AuditEvent[] = [];
    for (const e of src) {
      if (out.length >= q.limit) break;
      if (matchesQuery(e, q)) out.push(e);
    }
    return out;
  }

  *iterate(fromSeq = 0): Iterable<AuditEvent> {
    for (const e of this.events) if (e.seq >= fromSeq) yield e;
  }

  count(): number {
    return this.events.length;
  }

  putCheckpoint(cp: AuditCheckpoint): void {
    this.cps.set(cp.seq, cp);
  }

  checkpoints(): Map<number, AuditCheckpoint> {
    return new Map(this.cps);
  }

  latestCheckpoint(): AuditCheckpoint | null {
    let best: AuditCheckpoint | null = null;
    for (const cp of this.cps.values()) if (!best || cp.seq > best.seq) best = cp;
    return best;
  }

  anchor(): AuditAnchor | null {
    return this.anchorRecord;
  }

  trim(anchor: AuditAnchor): void {
    this.events = this.events.filter((e) => e.seq > anchor.throughSeq);
    for (const seq of [...this.cps.keys()]) if (seq <= anchor.throughSeq) this.cps.delete(seq);
    this.anchorRecord = anchor;
  }
}
