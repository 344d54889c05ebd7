/**
 * One HTTP exchange with a deadline: the timeout covers the whole answer, body included, and is
 * linked to the caller's signal. Redirects are refused, bodies are read up to a cap, and network
 * failures become typed errors.
 */
import { MAX_ANSWER_BODY_BYTES, MAX_ERROR_BODY_BYTES } from '../protocol/constants.js';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError, NomyoError, SecurityError } from '../errors.js';
import { sanitizeDetail } from './detail.js';

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

export interface Exchange {
  status: number;
  headers: Headers;
  body: string;
}

/** A 200 answer's body as bytes in one buffer (the rest as {@link Exchange}: `body` is then empty). */
export interface BytesExchange extends Exchange {
  bytes?: { buffer: Uint8Array; length: number };
}

export interface ExchangeOptions {
  timeout: number;
  signal?: AbortSignal | undefined;
  /** `fetchFn` calls the runtime's own global fetch as it is (no fetch option was given). */
  ownFetch?: boolean;
}

const decoder = new TextDecoder();

/** Runs `fetch` and reads the body as text, all under one deadline. */
export async function exchange(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions): Promise<Exchange> {
  return run(fetchFn, url, init, opts, async (response, ok) => ({
    status: response.status,
    headers: response.headers,
    body: await readText(response, ok ? MAX_ANSWER_BODY_BYTES : MAX_ERROR_BODY_BYTES, !ok),
  }));
}

/**
 * {@link exchange} for a package: a 200 answer's body is read as bytes into one buffer from
 * `buffers` (give it back there), error answers as text. `onSent` runs once fetch has answered:
 * fetch reads nothing more from the request body's buffer by then (see sendInit), so it can go back.
 */
export async function exchangeBytes(
  fetchFn: FetchFn,
  url: string,
  init: RequestInit,
  opts: ExchangeOptions & { buffers: ByteBufferSource; onSent?: () => void },
): Promise<BytesExchange> {
  return run(fetchFn, url, init, opts, async (response, ok) => {
    opts.onSent?.();
    if (!ok) return { status: response.status, headers: response.headers, body: await readText(response, MAX_ERROR_BODY_BYTES, true) };
    const bytes = await readBodyBytes(response, MAX_ANSWER_BODY_BYTES, opts.buffers);
    return { status: response.status, headers: response.headers, body: '', bytes };
  });
}

/** One fetch under the deadline, redirects refused, failures typed; `read` reads the answer. */
async function run<T>(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions, read: (response: Response, ok: boolean) => Promise<T>): Promise<T> {
  const { signal: callerSignal, timeout } = opts;
  if (callerSignal?.aborted) throw aborted(callerSignal);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeout);
  const onAbort = () => controller.abort();
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  const sending = sendInit(init, opts.ownFetch === true);
  let consumed = false;
  try {
    const response = await fetchFn(url, { ...sending.init, signal: controller.signal });
    // Fetch has answered: whatever of the body it has not taken yet goes as zeros (see sendInit).
    sending.revoke();
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new SecurityError(`the router answered ${response.status || 'with'} ${REDIRECT_REFUSED}`);
    }
    const answer = await read(response, response.status === 200);
    // A router answers 200 only once it has read the whole request: the connection has sent every byte.
    consumed = response.status === 200;
    return answer;
  } catch (cause) {
    if (callerSignal?.aborted) throw aborted(callerSignal);
    if (timedOut) throw new APIConnectionTimeoutError(`no complete answer within ${timeout} ms`, { cause });
    if (cause instanceof NomyoError) throw cause;
    if (isRedirectRefusal(cause)) throw new SecurityError(REDIRECT_REFUSED, { cause });
    throw new APIConnectionError(`could not reach the router: ${describeCause(cause)}`, { cause });
  } finally {
    sending.revoke();
    sending.done(consumed);
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The body as text, at most `limit` bytes: beyond it an answer is refused (`truncate` false) or an
 * error body is cut (`truncate` true; only its first 100 characters are ever shown).
 */
async function readText(response: Response, limit: number, truncate: boolean): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  // HTTP framing holds the body to its Content-Length: the runtime's own reader is then safe and fastest.
  if (declared <= limit) return response.text();
  if (declared > limit && !truncate) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.length > limit) {
      await reader.cancel().catch(() => undefined);
      if (!truncate) throw tooLarge(limit);
      chunks.push(value.subarray(0, limit - total));
      total = limit;
      break;
    }
    chunks.push(value);
    total += value.length;
  }
  if (chunks.length === 1) return decoder.decode(chunks[0]);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return decoder.decode(all);
}

/** Where the buffer comes from and goes back to (SecureMemory alloc/free on the client). */
export interface ByteBufferSource {
  alloc(size: number): Uint8Array;
  free(buffer: Uint8Array): void;
}

/** The first buffer when no usable Content-Length is given; it doubles as the body comes. */
const INITIAL_BYTES = 64 * 1024;

/**
 * Reads `response`'s body as bytes into one buffer, at most `limit` bytes: no text, no second copy.
 * Beyond the limit, or on any failure, the buffer is given back, the body cancelled, and a
 * SecurityError (or the failure) thrown. Content-Length only sizes
 * the buffer: a body that turns out longer (a Content-Encoding the runtime undid) grows it, up to
 * `limit`; a declared length above `limit` is refused before anything is read.
 * @returns the buffer from `source` (give it back with `source.free`) and the body's length in it.
 */
export async function readBodyBytes(response: Response, limit: number, source: ByteBufferSource): Promise<{ buffer: Uint8Array; length: number }> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit);
  }
  if (!response.body) return { buffer: source.alloc(0), length: 0 };
  const reader = response.body.getReader();
  let buffer = source.alloc(Number.isSafeInteger(declared) && declared >= 0 ? declared : Math.min(limit, INITIAL_BYTES));
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.length > buffer.length) {
        if (length + value.length > limit) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge(limit);
        }
        const larger = source.alloc(Math.min(limit, Math.max(buffer.length * 2, length + value.length)));
        larger.set(buffer.subarray(0, length));
        source.free(buffer);
        buffer = larger;
      }
      buffer.set(value, length);
      length += value.length;
    }
    return { buffer, length };
  } catch (err) {
    source.free(buffer);
    throw err;
  } finally {
    reader.releaseLock();
  }
}

/** Node's own fetch (undici) as found at load time, when this is Node. */
const nodeFetch = (globalThis as { process?: { versions?: { undici?: string } } }).process?.versions?.undici ? globalThis.fetch : undefined;

/** A request as it goes to fetch, and how to be done with its body's buffer. */
export interface Sending {
  init: RequestInit;
  /**
   * From now on fetch reads nothing more from the body's buffer, which can then go back for reuse
   * (with another request's plaintext in it, perhaps). Call it once fetch has answered or failed.
   */
  revoke(): void;
  /**
   * The exchange is over. `consumed`: the peer read the whole body before it answered (a router's
   * 200), so the connection has sent every byte fetch was given. Otherwise (an early answer, a
   * failure) the socket may still hold a piece it has not sent.
   */
  done(consumed: boolean): void;
}

/**
 * The request as it goes to fetch. A redirect must never take it (or the router key fetch) anywhere
 * else, least of all from https to http: 'manual' hands a redirect to us to refuse. A large body goes
 * with 'error' instead: with 'manual', fetch keeps a second copy of the whole body (Node's fetch tees
 * it, ready to re-send on a redirect); 'error' with no window re-sends nothing, so keeps none.
 *
 * Whatever fetch is given must stay valid after {@link Sending.revoke}, when the
 * body's buffer goes back to be reused: a router (or a proxy) may answer before it has read the whole
 * body, and fetch then goes on sending what it holds. So fetch never gets a view of that buffer:
 * - the runtime's own fetch takes a byte body whole when called, as the Fetch standard says (Node's,
 *   Deno's, Bun's and browsers' do); in Node it copies all of it first, so it gets a stream instead
 *   whose pieces are copied one at a time as it sends them ({@link copiedPieces}: no whole-size
 *   copy), and after `revoke` are zeros;
 * - a fetch option (or a global fetch replaced since load) may keep a view and read it late
 *   (node-fetch does, until the socket takes it): it gets a copy of its own, of any body.
 * Exported for the bench (stages), which sends as the client does. @internal
 */
export function sendInit(init: RequestInit, ownFetch: boolean): Sending {
  const body = init.body;
  if (!(body instanceof Uint8Array)) return { init: { ...init, redirect: 'manual' }, revoke: () => {}, done: () => {} };
  const large = body.length >= LARGE_BODY_BYTES;
  const sent: RequestInit = large ? { ...init, redirect: 'error', window: null } : { ...init, redirect: 'manual' };
  const runtimeFetch = ownFetch && (!nodeFetch || globalThis.fetch === nodeFetch);
  // A small body's buffer is reused too (for ciphertext only): a late reader would send another request's.
  if (!runtimeFetch) return { init: { ...sent, body: body.slice() }, revoke: () => {}, done: () => {} };
  if (!large || !nodeFetch) return { init: sent, revoke: () => {}, done: () => {} };
  const { stream, revoke, done } = copiedPieces(body);
  const headers = { ...(init.headers as Record<string, string>), 'Content-Length': String(body.length) };
  return { init: { ...sent, body: stream, headers, duplex: 'half' } as RequestInit, revoke, done };
}

/**
 * `body` as a stream of copies of its pieces, each made as fetch asks for it, into a ring of
 * {@link RING_PIECES} buffers reused in turn: no whole-size copy, and no garbage to collect. The
 * ring holds nothing but this body's own bytes (ciphertext), whoever reads it late. A slot is written
 * again {@link RING_PIECES} pieces later; Node's fetch asks for a piece only once the socket has
 * taken the one before (a ring of one passes the slow-link test), so none is overwritten before it
 * is sent; if one ever were, the router would find the package not authentic and refuse it. After
 * `revoke` the rest are zeros: the length stays as announced, and the body's buffer is not read again.
 *
 * The ring carries another body only once this connection is finished with it: every piece taken
 * before the answer came, and the peer's answer saying it read them all (`done(true)`). The socket
 * keeps the last piece it was given until it has sent it, which after an early answer (a 413, a
 * 4xx before the body was read) may be long after fetch has resolved: such a ring is left to the
 * collector, or that piece would go out as bytes of the next body.
 */
function copiedPieces(body: Uint8Array): { stream: ReadableStream<Uint8Array>; revoke(): void; done(consumed: boolean): void } {
  let source: Uint8Array | undefined = body;
  const length = body.length;
  const ring = idleRings.pop() ?? new Uint8Array(RING_PIECES * STREAM_PIECE_BYTES);
  let at = 0;
  let slot = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const size = Math.min(STREAM_PIECE_BYTES, length - at);
        const piece = ring.subarray(slot * STREAM_PIECE_BYTES, slot * STREAM_PIECE_BYTES + size);
        slot = (slot + 1) % RING_PIECES;
        if (source) piece.set(source.subarray(at, at + size));
        else piece.fill(0);
        controller.enqueue(piece);
        at += size;
        if (at === length) controller.close();
      },
    },
    // Nothing read ahead: a piece is copied only when fetch wants it.
    { highWaterMark: 0 },
  );
  let takenBeforeAnswer = false;
  const revoke = () => {
    if (!source) return;
    source = undefined;
    takenBeforeAnswer = at === length;
  };
  let finished = false;
  const done = (consumed: boolean) => {
    if (finished) return;
    finished = true;
    if (consumed && takenBeforeAnswer && idleRings.length < MAX_IDLE_RINGS) idleRings.push(ring);
  };
  return { stream, revoke, done };
}

/** Rings of {@link copiedPieces} no body uses now, for the next ones (a run of large requests touches no new pages). */
const idleRings: Uint8Array[] = [];
const MAX_IDLE_RINGS = 4;

const REDIRECT_REFUSED = 'a redirect: refused, nothing is sent anywhere but the configured routerUrl';
/** Request bodies from this size on are sent as {@link sendInit} says. */
const LARGE_BODY_BYTES = 64 * 1024;
const STREAM_PIECE_BYTES = 64 * 1024;
/** Pieces in a ring of copiedPieces (256 KiB), where fetch holds one at a time. */
const RING_PIECES = 4;

/**
 * Node's fetch refusing a redirect in 'error' mode: "fetch failed", caused by "unexpected redirect".
 * Browsers give a bare network error there (an APIConnectionError): refused all the same.
 */
function isRedirectRefusal(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return err instanceof TypeError && cause instanceof Error && cause.message === 'unexpected redirect';
}

function tooLarge(limit: number): SecurityError {
  return new SecurityError(`the router's answer exceeds ${limit} bytes: refused`);
}

function aborted(signal: AbortSignal): APIUserAbortError {
  return new APIUserAbortError('request aborted by the caller', { cause: signal.reason });
}

/** A short, safe description of a network failure (error codes only, never request content). */
function describeCause(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } })?.cause;
  const code = inner && typeof inner.code === 'string' ? inner.code : undefined;
  return sanitizeDetail(code ?? (cause instanceof Error ? cause.message : '')) ?? 'network error';
}

/** Waits for `work`, or rejects with APIUserAbortError as soon as `signal` aborts (the work goes on for others). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The requests following each caller signal, behind that signal's one listener. */
const followers = new WeakMap<AbortSignal, { controllers: Set<AbortController>; onAbort: () => void }>();

/**
 * An internal signal for one request that follows the caller's. However many requests share a
 * caller's signal, it carries a single listener (Node warns past ten), removed with the last request.
 */
export function followSignal(signal: AbortSignal | undefined): { signal: AbortSignal | undefined; release(): void } {
  if (!signal) return { signal: undefined, release: () => {} };
  const controller = new AbortController();
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { signal: controller.signal, release: () => {} };
  }
  let entry = followers.get(signal);
  if (!entry) {
    const controllers = new Set<AbortController>();
    const onAbort = () => {
      followers.delete(signal);
      for (const c of controllers) c.abort(signal.reason);
    };
    entry = { controllers, onAbort };
    followers.set(signal, entry);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const { controllers, onAbort } = entry;
  controllers.add(controller);
  return {
    signal: controller.signal,
    release: () => {
      controllers.delete(controller);
      if (controllers.size === 0 && followers.get(signal) === entry) {
        followers.delete(signal);
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
