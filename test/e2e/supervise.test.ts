import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_NOT_DURABLE, supervise } from "../../src/cli/supervise.ts";

const dir = mkdtempSync(join(tmpdir(), "latchkey-supervise-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in hub: exits 70 (audit not durable) the first `failures` times, then `finalCode`. */
function fakeHub(name: string, failures: number, finalCode: number): string {
  const file = join(dir, `${name}.mjs`);
  const counter = join(dir, `${name}.count`);
  writeFileSync(
    file,
    `import { existsSync, readFileSync, writeFileSync } from "node:fs";
const n = existsSync(${JSON.stringify(counter)}) ? Number(readFileSync(${JSON.stringify(counter)}, "utf8")) : 0;
writeFileSync(${JSON.stringify(counter)}, String(n + 1));
if (process.env.LATCHKEY_SUPERVISED !== "1") process.exit(99);
process.exit(n < ${failures} ? ${EXIT_NOT_DURABLE} : ${finalCode});
`,
  );
  return file;
}

const runs = (name: string) => Number(readFileSync(join(dir, `${name}.count`), "utf8"));

describe("hub supervisor", () => {
  it("restarts the hub after an audit durability failure", async () => {
    const lines: string[] = [];
    const code = await supervise({
      entry: fakeHub("a", 2, 0),
      args: [],
      delayMs: 10,
      log: (l) => lines.push(l),
    });
    expect(code).toBe(0);
    expect(runs("a")).toBe(3);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/audit log not durable/);
  });

  it("passes any other exit code through without restarting", async () => {
    expect(await supervise({ entry: fakeHub("b", 0, 2), args: [], delayMs: 10, log: () => {} })).toBe(2);
    expect(runs("b")).toBe(1);
  });

  it("gives up after its restart budget", async () => {
    const code = await supervise({
      entry: fakeHub("c", 100, 0),
      args: [],
      delayMs: 5,
      maxRestarts: 3,
      log: () => {},
    });
    expect(code).toBe(EXIT_NOT_DURABLE);
    expect(runs("c")).toBe(4);
    expect(existsSync(join(dir, "c.count"))).toBe(true);
  });
});
