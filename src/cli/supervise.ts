/**
 * `latchkey start` runs the hub under this small supervisor. When the hub stops because its audit log
 * could not be made durable (exit code 70, LK_AUDIT_NOT_DURABLE), the supervisor starts it again — a
 * fresh process re-reads the log from disk instead of retrying a write it cannot prove. Any other exit
 * ends the supervisor with the same code. SIGINT/SIGTERM are passed on; if the supervisor itself dies,
 * the hub notices (its IPC channel closes) and shuts down cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";

/** The exit code of a hub that stopped because the audit log was not durable. */
export const EXIT_NOT_DURABLE = 70;

export interface SuperviseOptions {
  /** The `latchkey` entry script and the arguments of the hub process. */
  readonly entry: string;
  readonly args: readonly string[];
  /** At most this many restarts within `windowMs`, then give up with exit code 70. Default 5 per 10 min. */
  readonly maxRestarts?: number;
  readonly windowMs?: number;
  /** Pause before a restart. Default 1 s. */
  readonly delayMs?: number;
  readonly log?: (line: string) => void;
}

/** Environment variable that marks the supervised hub process. */
export const SUPERVISED_ENV = "LATCHKEY_SUPERVISED";

/** Run the hub until it exits for good; resolves with the exit code to use. */
export function supervise(o: SuperviseOptions): Promise<number> {
  const log = o.log ?? ((l: string) => console.error(l));
  const maxRestarts = o.maxRestarts ?? 5;
  const windowMs = o.windowMs ?? 600_000;
  const restarts: number[] = [];
  let child: ChildProcess | null = null;
  let stopping = false;
  const forward = (sig: NodeJS.Signals) => {
    stopping = true;
    child?.kill(sig);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);

  return new Promise((resolve) => {
    const run = () => {
      child = spawn(process.execPath, [o.entry, ...o.args], {
        stdio: ["inherit", "inherit", "inherit", "ipc"],
        env: { ...process.env, [SUPERVISED_ENV]: "1" },
      });
      child.on("exit", (code, signal) => {
        const exitCode = code ?? (signal ? 128 : 1);
        const now = Date.now();
        while (restarts.length && now - restarts[0]! > windowMs) restarts.shift();
        if (!stopping && exitCode === EXIT_NOT_DURABLE && restarts.length < maxRestarts) {
          restarts.push(now);
          log(
            `latchkey: the hub stopped (audit log not durable); restarting (${restarts.length}/${maxRestarts})`,
          );
          setTimeout(run, o.delayMs ?? 1000);
          return;
        }
        process.off("SIGINT", forward);
        process.off("SIGTERM", forward);
        resolve(exitCode);
      });
    };
    run();
  });
}

/** In the supervised hub: shut down when the supervisor goes away. */
export function exitWithSupervisor(shutdown: () => void): void {
  if (process.env[SUPERVISED_ENV] === "1" && process.connected) {
    process.on("disconnect", shutdown);
  }
}
