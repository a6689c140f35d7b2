/**
 * A recovery kit the hub has just made (claim, recover, a new code): the code is shown only once, so the
 * console keeps the kit in this tab's sessionStorage until the owner confirms they printed or saved it. A
 * reload shows it again; confirming or signing out forgets it.
 */
import type { Api } from "../api/client.ts";
import { seg } from "../api/client.ts";

const KIT_KEY = "latchkey.console.kit";

export interface PendingKit {
  readonly deviceId: string;
  readonly ownerName: string;
  readonly recoveryCode: string;
  /** When the hub made the code (this device's clock, ms). */
  readonly madeAt: number;
  /** What made it: claiming the hub, recovering access with the old code, or a new code on demand. */
  readonly reason: "claim" | "recover" | "rotate";
}

export function loadPendingKit(): PendingKit | null {
  try {
    const raw = sessionStorage.getItem(KIT_KEY);
    if (!raw) return null;
    const k = JSON.parse(raw) as Partial<PendingKit>;
    if (
      typeof k.deviceId !== "string" ||
      typeof k.ownerName !== "string" ||
      typeof k.recoveryCode !== "string" ||
      typeof k.madeAt !== "number" ||
      (k.reason !== "claim" && k.reason !== "recover" && k.reason !== "rotate")
    )
      return null;
    return k as PendingKit;
  } catch {
    return null;
  }
}

export function savePendingKit(kit: PendingKit): void {
  try {
    sessionStorage.setItem(KIT_KEY, JSON.stringify(kit));
  } catch {
    // Storage disabled: the kit lives until the page closes.
  }
}

export function clearPendingKit(): void {
  try {
    sessionStorage.removeItem(KIT_KEY);
  } catch {
    // nothing kept
  }
}

interface TokenRecord {
  id: string;
  label: string;
  createdAt: number;
}

/**
 * After claiming or recovering, find the id of the token the hub just gave this console (the hub does not
 * return it): the only token of a just-claimed owner, or the newest one with the recovery's label. Best
 * effort: on any doubt the id stays unknown.
 */
export async function learnTokenId(api: Api, userId: string, label: string | null): Promise<void> {
  try {
    const list = await api.get<TokenRecord[]>(`/api/v1/users/${seg(userId)}/tokens`);
    const pick =
      label === null
        ? list.length === 1
          ? list[0]
          : undefined
        : list.filter((t) => t.label === label).sort((a, b) => b.createdAt - a.createdAt)[0];
    if (pick) api.setTokenId(pick.id);
  } catch {
    // unknown: the token list just does not mark it
  }
}
