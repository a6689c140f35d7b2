/**
 * Reading a secret (a PIN) for the CLI: from a terminal with a hidden prompt, asked twice; otherwise
 * from standard input. Never from the command line, where it would land in shell history and `ps`.
 */
import { readFileSync } from "node:fs";
import { LatchkeyError } from "../core/errors.ts";

/** Read one line from the terminal without echoing it. Ctrl-C aborts (exit 130), Ctrl-D ends the line. */
export function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve) => {
    let value = "";
    const wasRaw = stdin.isRaw;
    // Echo off before the prompt shows, so nothing typed early is echoed by the terminal.
    stdin.setRawMode(true);
    process.stderr.write(prompt);
    stdin.setEncoding("utf8");
    stdin.resume();
    const finish = () => {
      stdin.off("data", onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write("\n");
      resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return finish();
        if (ch === "\u0003") {
          stdin.setRawMode(wasRaw);
          process.stderr.write("\n");
          process.exit(130);
        }
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else if (ch === "\u0015")
          value = ""; // Ctrl-U: erase the line
        else if (ch >= " ") value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

function emptyPin(): LatchkeyError {
  return new LatchkeyError("LK_PIN_FORMAT", "no PIN given: type 4 to 12 digits (nothing was changed)");
}

/**
 * The PIN for `name`: on a terminal, prompted twice with hidden input; otherwise the first line of
 * standard input. Throws LK_PIN_FORMAT when empty and LK_INVALID_INPUT when the two entries differ.
 */
export async function readPin(name: string): Promise<string> {
  if (process.stdin.isTTY) {
    const first = (await readHidden(`PIN for ${name}: `)).trim();
    if (first === "") throw emptyPin();
    const again = (await readHidden("Repeat the PIN: ")).trim();
    if (again !== first)
      throw new LatchkeyError("LK_INVALID_INPUT", "the two PINs differ (nothing was changed)");
    return first;
  }
  const pin = (readFileSync(0, "utf8").split(/\r?\n/)[0] ?? "").trim();
  if (pin === "") throw emptyPin();
  return pin;
}

/** Whether the PIN will be prompted for (so the caller can look the user's name up first). */
export const pinFromTerminal = (): boolean => Boolean(process.stdin.isTTY);
