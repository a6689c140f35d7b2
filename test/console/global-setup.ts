/**
 * Vitest global setup: the console's browser tests need the built console (`dist/console/`), which the hub
 * serves. Builds it when it is missing or older than a file under `console/`; otherwise does nothing.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const SOURCES = join(ROOT, "console");
const BUILT = join(ROOT, "dist/console/index.html");

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  if (!existsSync(SOURCES)) return;
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newest(SOURCES)) return;
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules/vite/bin/vite.js"),
      "build",
      "--config",
      "console/vite.config.ts",
      "--logLevel",
      "warn",
    ],
    {
      cwd: ROOT,
      stdio: "inherit",
      timeout: 60_000,
    },
  );
}
