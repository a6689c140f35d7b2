/**
 * Browser fixtures of the console's end-to-end tests: Debian's Chromium driven by playwright-core, a guard
 * that records (and aborts) every request to anything but the hub, and screenshots.
 */
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.LATCHKEY_CHROMIUM ?? "/usr/bin/chromium";

/** Headless Chromium; every action and wait fails after `actionTimeout` rather than hanging. */
export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 20_000,
  });
}

export const DESKTOP = { viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 } as const;
export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
} as const;

export interface Guarded {
  readonly context: BrowserContext;
  /** Requests to anything but the hub: each was aborted. */
  readonly outside: string[];
  /** Uncaught page errors and console errors. */
  readonly errors: string[];
}

/**
 * A browser context where every request not to `hubOrigin` is recorded and aborted. The page's own CSP
 * would block most such requests before they reach the network (and so before this guard sees them):
 * `bypassCSP` lets any attempt through to the guard, so the test sees what the console tried.
 */
export async function guardedContext(
  browser: Browser,
  hubOrigin: string,
  options: typeof DESKTOP | typeof PHONE = DESKTOP,
): Promise<Guarded> {
  const context = await browser.newContext({ ...options, bypassCSP: true, serviceWorkers: "block" });
  context.setDefaultTimeout(10_000);
  const outside: string[] = [];
  const errors: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === hubOrigin) return route.continue();
    outside.push(url);
    return route.abort("blockedbyclient");
  });
  context.on("page", (p) => watch(p, errors));
  return { context, outside, errors };
}

function watch(page: Page, errors: string[]): void {
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("websocket", (ws) => errors.push(`websocket: ${ws.url()}`));
}

/**
 * Screenshots go to docs/screenshots/ when LATCHKEY_SCREENSHOTS=1 (to refresh the ones in the docs),
 * otherwise to a temporary directory: a test run leaves the working tree as it was.
 */
const SHOT_DIR =
  process.env.LATCHKEY_SCREENSHOTS === "1"
    ? resolve(import.meta.dirname, "../../docs/screenshots")
    : join(tmpdir(), "latchkey-console-screenshots");
mkdirSync(SHOT_DIR, { recursive: true });

/** A PNG of the page (the whole page unless `fullPage: false`: a phone's first screen). */
export async function shot(page: Page, name: string, o: { fullPage?: boolean } = {}): Promise<void> {
  await page.screenshot({
    path: join(SHOT_DIR, `${name}.png`),
    fullPage: o.fullPage ?? true,
    caret: "hide",
    animations: "disabled",
  });
}

/** Wait until no element announces itself as loading (`aria-busy="true"`). */
export async function settled(page: Page): Promise<void> {
  await page.waitForFunction("document.querySelectorAll('[aria-busy=\"true\"]').length === 0", null, {
    timeout: 10_000,
  });
}
