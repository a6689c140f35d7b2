/**
 * The link transport over TCP (LAN), an adapter of {@link LinkTransport} (docs/protocol/link.md
 * § "Transports"). TCP is a byte stream, so each frame travels as one length byte (1..244) followed by
 * the frame. A length of 0, or one above the configured frame size, is a protocol error: the connection
 * closes with `LK_LINK_LIMIT`, and nothing after it is delivered. Both ends must use the same frame size.
 *
 * Closing: `close()` ends the local side at once (no frame is delivered after it) and half-closes the
 * socket; the peer sees the end of the stream and closes too. Each end's close handler runs once:
 * `null` for an orderly close (either side), else the error.
 *
 * Servers bind to 127.0.0.1 unless told otherwise.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { LatchkeyError } from "../core/errors.ts";
import { checkFrameSize, DEFAULT_FRAME_SIZE } from "../core/link/frames.ts";
import type { LinkTransport } from "./transport.ts";

class TcpEnd implements LinkTransport {
  readonly frameSize: number;
  #closed = false;
  #frameHandler: ((frame: Uint8Array) => void) | null = null;
  #closeHandler: ((reason: LatchkeyError | null) => void) | null = null;
  #closeReason: LatchkeyError | null | undefined = undefined;
  #pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly socket: Socket,
    frameSize: number,
  ) {
    this.frameSize = frameSize;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.close());
    socket.on("close", () => this.#finish(null));
    socket.on("error", (e) =>
      this.#finish(new LatchkeyError("LK_LINK_CLOSED", `the TCP link failed: ${e.message}`)),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(frame: Uint8Array): void {
    if (this.#closed) throw new LatchkeyError("LK_LINK_CLOSED", "the link is closed");
    if (!(frame instanceof Uint8Array) || frame.length === 0 || frame.length > this.frameSize) {
      throw new LatchkeyError("LK_LINK_LIMIT", `a frame is 1..${this.frameSize} bytes`);
    }
    const out = Buffer.allocUnsafe(1 + frame.length);
    out[0] = frame.length;
    out.set(frame, 1);
    this.socket.write(out);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#frameHandler = handler;
  }

  onClose(handler: (reason: LatchkeyError | null) => void): void {
    this.#closeHandler = handler;
    if (this.#closeReason !== undefined) {
      const r = this.#closeReason;
      queueMicrotask(() => handler(r));
    }
  }

  close(reason?: LatchkeyError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (reason) this.socket.destroy();
    else this.socket.end();
    this.#finish(reason ?? null);
  }

  #finish(reason: LatchkeyError | null): void {
    this.#closed = true;
    if (this.#closeReason !== undefined) return;
    this.#closeReason = reason;
    this.#closeHandler?.(reason);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let off = 0;
    while (off < this.#pending.length) {
      const n = this.#pending[off]!;
      if (n === 0 || n > this.frameSize) {
        this.close(
          new LatchkeyError("LK_LINK_LIMIT", `the peer sent a frame of ${n} bytes (1..${this.frameSize})`),
        );
        return;
      }
      if (off + 1 + n > this.#pending.length) break;
      const frame = new Uint8Array(this.#pending.subarray(off + 1, off + 1 + n));
      off += 1 + n;
      this.#frameHandler?.(frame);
      if (this.#closed) return;
    }
    this.#pending = Buffer.from(this.#pending.subarray(off));
  }
}

/** A listening TCP link endpoint (the lock's side). */
export interface TcpLinkServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listen for phones on TCP. Each accepted connection becomes a {@link LinkTransport} passed to `onLink`.
 * @param opts `port` (0 = any free port), `host` (default 127.0.0.1), `frameSize` (20..244, default 20)
 * @throws LatchkeyError `LK_LINK_LIMIT` on a bad frame size
 */
export function listenTcpLink(
  onLink: (t: LinkTransport) => void,
  opts: { port?: number; host?: string; frameSize?: number } = {},
): Promise<TcpLinkServer> {
  const frameSize = opts.frameSize ?? DEFAULT_FRAME_SIZE;
  checkFrameSize(frameSize);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    onLink(new TcpEnd(socket, frameSize));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * Connect to a lock's TCP link endpoint (the phone's side).
 * @throws LatchkeyError `LK_LINK_CLOSED` when the connection cannot be made, `LK_LINK_LIMIT` on a bad frame size
 */
export function connectTcpLink(
  port: number,
  opts: { host?: string; frameSize?: number; timeoutMs?: number } = {},
): Promise<LinkTransport> {
  const frameSize = opts.frameSize ?? DEFAULT_FRAME_SIZE;
  checkFrameSize(frameSize);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: opts.host ?? "127.0.0.1" });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LatchkeyError("LK_LINK_CLOSED", "the lock did not answer the TCP connection in time"));
    }, opts.timeoutMs ?? 5000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(new TcpEnd(socket, frameSize));
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(new LatchkeyError("LK_LINK_CLOSED", `cannot connect to the lock: ${e.message}`));
    });
  });
}
