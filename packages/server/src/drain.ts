/**
 * The graceful drain of close() (and of SIGTERM/SIGINT in the CLI): the listener stops accepting
 * and idle kept-alive connections are closed at once; a new request on a kept-alive connection gets
 * 503 with `Connection: close` (admission.ts; a CORS preflight its 204, with `Connection: close`); requests and streams in flight get until the drain
 * timeout to finish. Then the `closing` signal aborts what is left with a {@link ShutdownError}: a
 * stream ends with a final record that carries it (answer-stream.ts), a request not yet answered
 * gets 503. A moment later every connection still open is closed, whatever it was doing (a client
 * that stopped reading cannot take its final record). close() resolves once every request has had
 * its log event, those the closed connections ended too (a request's line comes after its
 * connection closed: a drain that ended a CLI process before it lost them).
 */
import type http from 'node:http';
import type { SealedError } from '@nomyo/core/protocol';
import { whenRequestEnds } from './response-end.js';

export const SHUTTING_DOWN = 'router shutting down';

/** What `closing` is aborted with at the drain deadline (or at the end of a drain that finished in time). */
export class ShutdownError extends Error {
  constructor() {
    super(SHUTTING_DOWN);
    this.name = 'ShutdownError';
  }
}

export function isShutdown(reason: unknown): boolean {
  return reason instanceof ShutdownError;
}

/** What the final record of a stream cut at the deadline carries. */
export const SHUTDOWN_ERROR: SealedError = { message: SHUTTING_DOWN, type: 'server_error', code: 'router_shutting_down', status: 503 };

/** Headers of a response refused or cut short by a drain: go elsewhere, and not on this connection. */
export const DRAIN_HEADERS: Readonly<Record<string, string>> = { Connection: 'close', 'Retry-After': '1' };

/** How long streams cut at the deadline get to write their final record before every connection is closed. */
export const FINAL_RECORD_GRACE_MS = 1000;

/** The longest close() waits, once every connection is closed, for the log events of the requests they ended. */
export const LAST_LOG_GRACE_MS = 1000;

export class Drain {
  #draining = false;
  #inFlight = 0;
  #idle = new Set<() => void>();
  /** Requests whose log event is still to come; `#allLogged` told when none is. */
  #unlogged = 0;
  #allLogged: (() => void) | undefined;

  constructor(
    private readonly server: http.Server,
    private readonly closing: AbortController,
  ) {}

  /** True from the start of the drain. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Requests whose response has not ended yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Counts the request of `res` as in flight until its response ends (or its connection closes). */
  track(res: http.ServerResponse): void {
    this.#inFlight++;
    this.#unlogged++;
    whenRequestEnds(res, () => {
      this.#inFlight--;
      // Its connection, kept alive, is idle now: nothing more will come on it that we would serve.
      if (this.#draining) setImmediate(() => this.server.closeIdleConnections());
      if (this.#inFlight === 0) for (const wake of this.#idle) wake();
    });
  }

  /** A tracked request has had its log event (admission.ts requestEnded). */
  logged(): void {
    if (--this.#unlogged === 0) this.#allLogged?.();
  }

  /** Drains and stops the listener (see the top of this file); resolves once every connection is closed and every request logged. */
  async run(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const finished = await this.#idleWithin(timeoutMs);
    this.closing.abort(new ShutdownError());
    if (!finished) await this.#idleWithin(FINAL_RECORD_GRACE_MS);
    this.server.closeAllConnections();
    await stopped;
    if (this.#unlogged > 0) {
      // Bounded: a request that never ends (a test hook's promise that never settles) must not hold close() for ever.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, LAST_LOG_GRACE_MS);
        this.#allLogged = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Whether nothing is in flight any more within `ms`. */
  #idleWithin(ms: number): Promise<boolean> {
    if (this.#inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean) => {
        clearTimeout(timer);
        this.#idle.delete(wake);
        resolve(idle);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.#idle.add(wake);
    });
  }
}
