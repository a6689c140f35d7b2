/** Spawn the real `latchkey` command (bin/latchkey.js) for end-to-end tests. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const BIN = resolve(import.meta.dirname, "../../bin/latchkey.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `latchkey <args>` to completion. */
export function cli(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Start a hub process on a free port; resolves once /healthz answers. */
export async function startHubProcess(
  dataDir: string,
  extraArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  let out = "";
  const child = spawn(process.execPath, [BIN, "--data-dir", dataDir, "start", "--port", "0", ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const urlFile = join(dataDir, "hub.url");
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`hub exited ${child.exitCode}: ${out}`);
    if (existsSync(urlFile) && out.includes("listening on")) {
      const url = readFileSync(urlFile, "utf8").trim();
      try {
        if ((await fetch(`${url}/healthz`)).ok) return { child, url, output: () => out };
      } catch {
        // not yet
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`hub did not become ready: ${out}`);
}

export function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once("exit", (c) => r(c))));
}
