/**
 * One HTTP exchange with a deadline: the timeout covers the whole response, body included, and is
 * linked to the caller's signal. Redirects are refused, bodies are read up to a cap, and network
 * failures become typed errors.
 */
import { MAX_ANSWER_BODY_BYTES, MAX_ERROR_BODY_BYTES, MAX_KEY_BODY_BYTES } from '../protocol/constants.js';
import { SecurityError } from '../errors.js';
import type { ByteSource, OwnedBytes } from '../memory/owned-bytes.js';
import { heedAbort } from './abort.js';
import { Deadline } from './deadline.js';
import { ResponseStream } from './response-stream.js';
import { readBodyBytes, readText } from './read-body.js';
import { isRuntimeFetch, sendInit } from './send-body.js';

/** A `fetch` the client can use: called with the full URL and a `RequestInit` (see the `fetch` option). */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** A response with its body read: as text here (an error's, or a key), as bytes in {@link BytesExchange}. */
export interface Exchange {
  status: number;
  headers: Headers;
  /** The body as text; empty when it was read as bytes. */
  text: string;
}

/**
 * A 200 response's body as bytes in one buffer, which the caller releases, or, for a streamed
 * answer the caller asked for, as a stream it reads and closes (the rest as {@link Exchange}).
 */
export interface BytesExchange extends Exchange {
  body?: OwnedBytes;
  stream?: ResponseStream;
}

export interface ExchangeOptions {
  timeout: number;
  signal?: AbortSignal | undefined;
  /** `fetchFn` calls the runtime's own global fetch as it is (no fetch option was given). */
  ownFetch?: boolean;
}

/** Runs `fetch` for the router's key and reads the body as text (a key's, or an error's), all under one deadline. */
export async function exchange(fetchFn: FetchFn, url: string, init: RequestInit, opts: ExchangeOptions): Promise<Exchange> {
  return run(fetchFn, url, init, opts, async (response, ok, deadline) => ({
    status: response.status,
    headers: response.headers,
    text: await readText(response, ok ? MAX_KEY_BODY_BYTES : MAX_ERROR_BODY_BYTES, !ok, bodySignal(opts, deadline)),
  }));
}

/**
 * {@link exchange} for a package: takes `body` over, and releases it once fetch has answered (fetch
 * reads nothing more from its buffer by then: send-body.ts). A 200 response's body is read as bytes
 * into a buffer from `into`, an error's as text. A streamed answer (`text/event-stream`) is handed
 * over unread when `streams` (the request asked for one), and refused when not.
 */
export async function exchangeBytes(
  fetchFn: FetchFn,
  url: string,
  init: RequestInit,
  body: OwnedBytes,
  opts: ExchangeOptions & { into: ByteSource; streams?: boolean },
): Promise<BytesExchange> {
  try {
    const read = async (response: Response, ok: boolean, deadline: Deadline): Promise<BytesExchange> => {
      body.release();
      const { status, headers } = response;
      if (!ok) return { status, headers, text: await readText(response, MAX_ERROR_BODY_BYTES, true, bodySignal(opts, deadline)) };
      if (isEventStream(headers)) {
        if (!opts.streams || !response.body) {
          await response.body?.cancel().catch(() => undefined);
          throw new SecurityError('the router streamed its answer to a request that did not ask for a stream: refused');
        }
        return { status, headers, text: '', stream: new ResponseStream(response.body, headers, deadline) };
      }
      return { status, headers, text: '', body: await readBodyBytes(response, MAX_ANSWER_BODY_BYTES, opts.into, deadline.signal) };
    };
    const discard = (late: BytesExchange) => (late.body?.release(), late.stream?.close());
    return await run(fetchFn, url, { ...init, body: body.bytes }, opts, read, (result) => result.stream !== undefined, discard);
  } finally {
    body.release();
  }
}

/**
 * What a text body is read under: nothing when the runtime's own fetch made it (its body heeds the
 * deadline's signal), else the signal, on which the body is cancelled (a custom fetch's, or a global
 * fetch replaced since load, may not heed it).
 */
function bodySignal(opts: ExchangeOptions, deadline: Deadline): AbortSignal | undefined {
  return isRuntimeFetch(opts.ownFetch === true) ? undefined : deadline.signal;
}

/** A response that came after its exchange had ended: its connection closed. */
function cancelBody(response: Response): void {
  response.body?.cancel().catch(() => undefined);
}

function isEventStream(headers: Headers): boolean {
  return /^text\/event-stream\b/i.test(headers.get('content-type') ?? '');
}

/**
 * One fetch under a {@link Deadline}, redirects refused, failures typed; `read` reads the response.
 * `read` may take the deadline over (a stream, read after this returns: `handedOn`), else it ends here.
 */
async function run<T>(
  fetchFn: FetchFn,
  url: string,
  init: RequestInit,
  opts: ExchangeOptions & { streams?: boolean },
  read: (response: Response, ok: boolean, deadline: Deadline) => Promise<T>,
  handedOn: (result: T) => boolean = () => false,
  /** What a read that finishes after the deadline has passed gives back (its buffer, its stream). */
  discard?: (late: T) => void,
): Promise<T> {
  const deadline = new Deadline(opts.timeout, opts.signal, opts.streams ? 'stream header' : 'complete response');
  const sending = sendInit(init, opts.ownFetch === true);
  let consumed = false;
  let result: T | undefined;
  try {
    // The deadline holds even for a fetch that does not heed its signal (a custom one may drop it).
    const response = await heedAbort(fetchFn(url, { ...sending.init, signal: deadline.signal }), deadline.signal, cancelBody);
    // Fetch has answered: whatever of the body it has not taken yet goes as zeros (see sendInit).
    sending.revoke();
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      await response.body?.cancel().catch(() => undefined);
      throw new SecurityError(`the router answered ${response.status || 'with'} ${REDIRECT_REFUSED}`);
    }
    result = await heedAbort(read(response, response.status === 200, deadline), deadline.signal, discard);
    // A router answers 200 only once it has read the whole request: the connection has sent every byte.
    consumed = response.status === 200;
    return result;
  } catch (cause) {
    if (isRedirectRefusal(cause)) throw new SecurityError(REDIRECT_REFUSED, { cause });
    throw deadline.error(cause);
  } finally {
    sending.revoke();
    sending.done(consumed);
    if (result === undefined || !handedOn(result)) deadline.dispose();
  }
}

const REDIRECT_REFUSED = 'a redirect: refused, nothing is sent anywhere but the configured routerUrl';
/**
 * Node's fetch refusing a redirect in 'error' mode: "fetch failed", caused by "unexpected redirect".
 * Browsers give a bare network error there (an APIConnectionError): refused all the same.
 */
function isRedirectRefusal(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return err instanceof TypeError && cause instanceof Error && cause.message === 'unexpected redirect';
}


