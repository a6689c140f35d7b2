/** Shared filter semantics of {@link AuditQuery}, used by adapters that filter in memory. */
import type { AuditEvent } from "../core/audit/chain.ts";
import type { AuditQuery } from "./audit-store.ts";

/** Does `e` match every filter in `q` (ignoring `limit` and order)? */
export function matchesQuery(e: AuditEvent, q: AuditQuery): boolean {
  if (q.afterSeq !== undefined && e.seq <= q.afterSeq) return false;
  if (q.beforeSeq !== undefined && e.seq >= q.beforeSeq) return false;
  if (q.lockId !== undefined && e.lockId !== q.lockId) return false;
  if (q.userId !== undefined && e.data.userId !== q.userId) return false;
  if (q.kinds !== undefined && !q.kinds.includes(e.kind)) return false;
  if (q.from !== undefined && e.at < q.from) return false;
  if (q.to !== undefined && e.at >= q.to) return false;
  return true;
}
