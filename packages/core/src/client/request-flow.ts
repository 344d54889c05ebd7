/**
 * What every request of a client goes through, whole or streamed: the checks of its options, its
 * payload serialized once up front (a fresh package for each attempt), the router's key and the
 * version it allows, the version's protection and headers, and the retries: 429, 503, connection
 * failures and timeouts with backoff, and one fetch of the router's key after a 400 it did not seal
 * (it could not open the package: its key may have changed).
 */
import { HEADERS, type ProtocolVersion, type SecurityTier } from '../protocol/constants.js';
import type { ClientKeyHolder } from '../keys/key-holder.js';
import { chooseProtocol, type ProtocolOption } from '../keys/protocol-choice.js';
import type { ServerKey, ServerKeyCache } from '../keys/server-key.js';
import type { SecureByteContext } from '../memory/context.js';
import type { OwnedBytes } from '../memory/owned-bytes.js';
import { APIConnectionTimeoutError, APIUserAbortError, DisposedError, InvalidRequestError } from '../errors.js';
import { aborted, followSignal, linkedController, untilAborted } from '../transport/abort.js';
import { checkApiKeyFormat, checkPayloadId, checkSecurityTier } from '../transport/policy.js';
import { isRetryable, withRetries } from '../transport/retry.js';
import { checkTimeout } from './options.js';
import { sealablePayloads, serializePayload } from './payload.js';
import { v1Protection, v2Protection, type Protection } from './protection.js';
import type { Disposal } from './disposal.js';
import type { NextRequestKeys } from './request-keys.js';

/** The per-call options of sendSecureRequest (and of a streamed request). */
export interface SendOptions {
  /** Sent as `Authorization: Bearer`; control characters are refused. */
  apiKey?: string | undefined;
  /** Sent as `X-Security-Tier` (bound into the seal in v2). */
  securityTier?: SecurityTier | undefined;
  /** Aborts the call with APIUserAbortError, in flight or between retries. */
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeout for this call (for a stream: until its header event). */
  timeout?: number | undefined;
}

/** What a client's requests share: its router, its keys, its protocol option and retries. */
export interface RequestContext {
  readonly routerUrl: string;
  readonly protocol: ProtocolOption;
  readonly maxRetries: number;
  readonly timeout: number;
  readonly serverKeys: ServerKeyCache;
  readonly keys: ClientKeyHolder;
  /** The key of the next request, made ahead. */
  readonly requestKeys: NextRequestKeys;
  /** Whether the client was disposed (then no attempt starts: a retry, a key fetch), and how a backoff hears of it. */
  readonly disposal: Disposal;
}

/**
 * What a call's `over` signal aborts with once the call is over: one reason, made once. A reason made
 * per call captured a stack that held the call, its payload with it (the caller's messages), for as
 * long as anything held the signal. It never reaches a caller: {@link routerKey} puts the call's own
 * error in its place.
 */
const CALL_OVER = new APIUserAbortError('the call is over');

/** What a wait that ended because its call is over gives its caller: the caller's abort, when that is what ended it. */
function callOver(call: Call): unknown {
  return call.signal?.aborted ? aborted(call.signal) : new APIUserAbortError('the call is over');
}

/** One call, checked, whatever its attempts: its payload serialized once, a signal that follows the caller's. */
export class Call {
  readonly tier: SecurityTier | undefined;
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
  /** The fingerprint of the router key its latest attempt was sealed to (see withRetriesAndKeyRefresh). */
  sealedTo: string | undefined;
  readonly #link: { release(): void };
  #first: OwnedBytes | undefined;
  /** Aborted when the call is over, or its caller aborts: what it waits on for as long as it lasts (the router's key). */
  #over: AbortController | undefined;

  constructor(
    readonly payload: object,
    readonly payloadId: string,
    readonly options: SendOptions,
    readonly secure: SecureByteContext,
    defaultTimeout: number,
    extraSignal?: AbortSignal,
  ) {
    checkPayloadId(payloadId);
    checkApiKeyFormat(options.apiKey);
    this.tier = checkSecurityTier(options.securityTier);
    this.timeout = checkTimeout(options.timeout ?? defaultTimeout);
    // Serialized here, so that a payload that is not an object, or too large, is refused before
    // anything is sent.
    this.#first = serializePayload(payload, sealablePayloads(secure));
    // One listener on the caller's signal however many calls share it; the stream's own controller
    // (`extraSignal`) and this call's signal live and die with the call.
    const link = followSignal(options.signal);
    this.signal = extraSignal ? anySignal(link.signal, extraSignal) : link.signal;
    this.#link = link;
  }

  /** The payload's bytes for one attempt (taken over by the attempt): the first serialization, then fresh ones. */
  plaintext(payload: object = this.payload): OwnedBytes {
    const first = this.#first;
    this.#first = undefined;
    if (first && payload === this.payload) return first;
    first?.release();
    return serializePayload(payload, sealablePayloads(this.secure));
  }

  /** The request headers but the version's own. */
  headers(): Record<string, string> {
    const headers: Record<string, string> = { [HEADERS.payloadId]: this.payloadId };
    if (this.options.apiKey) headers[HEADERS.authorization] = `Bearer ${this.options.apiKey}`;
    if (this.tier) headers[HEADERS.securityTier] = this.tier;
    return headers;
  }

  /**
   * A signal that aborts once the call is over ({@link release}), or its caller aborts (with the
   * APIUserAbortError of it): a shared wait stays joined by the call across its attempts until then.
   */
  get over(): AbortSignal {
    if (!this.#over) {
      const over = new AbortController();
      this.#over = over;
      const signal = this.signal;
      if (signal?.aborted) over.abort(aborted(signal));
      // Removed once the call is over: its signal follows the caller's, which may outlive it by far.
      else signal?.addEventListener('abort', () => over.abort(aborted(signal)), { once: true, signal: over.signal });
    }
    return this.#over.signal;
  }

  /** Done with: what was not sent is zeroed, the signal's link removed. */
  release(): void {
    this.#first?.release();
    this.#first = undefined;
    this.#link.release();
    this.#over?.abort(CALL_OVER);
  }
}

/**
 * The router's key (and with it the version to send) and the version's protection for one attempt.
 * The client key pair is asked for only when v1 is sent: v2 never makes one.
 */
export async function protect(ctx: RequestContext, call: Call): Promise<Protection & { version: ProtocolVersion }> {
  // Shared by concurrent callers, so one caller's abort stops its wait, not the shared work.
  // `protocol: 1` knows it needs the pair before the key response: both are made side by side.
  const v1Keys = ctx.protocol === 1 ? ctx.keys.current() : undefined;
  const [serverKey, keys] = await untilAborted(Promise.all([ctx.serverKeys.fresh() ?? routerKey(call, (giveUp) => ctx.serverKeys.get(giveUp)), v1Keys]), call.signal);
  call.sealedTo = serverKey.fingerprint;
  const version = chooseProtocol(ctx.protocol, serverKey, ctx.routerUrl);
  if (version === 2) return v2Protection(await ctx.requestKeys.v2.take(serverKey.key, call.secure), { payloadId: call.payloadId, tier: call.tier });
  const packageKey = ctx.requestKeys.v1.take(serverKey.key, call.secure);
  return v1Protection(await packageKey, keys ?? (await untilAborted(ctx.keys.current(), call.signal)));
}

/**
 * The router's key as one attempt of `call` waits for it: within the call's timeout, and until its
 * caller aborts. The fetch, shared by concurrent calls, runs under the client's timeout; each call
 * stays joined to it until the call is over (a retry after an attempt's timeout finds it still under
 * way), and it is cancelled once no call waits for it. Fetched once: the call's retries retry it.
 */
function routerKey(call: Call, wait: (giveUp: AbortSignal) => Promise<ServerKey>): Promise<ServerKey> {
  const key = wait(call.over);
  return new Promise<ServerKey>((resolve, reject) => {
    const timer = setTimeout(() => reject(new APIConnectionTimeoutError(`no router key within ${call.timeout} ms`)), call.timeout);
    key.then(resolve, (err: unknown) => reject(err === CALL_OVER ? callOver(call) : err)).finally(() => clearTimeout(timer));
  });
}

/** Runs `attempt` with the retries and the one key refresh of a call (see above). */
export async function withRetriesAndKeyRefresh<T>(ctx: RequestContext, call: Call, attempt: () => Promise<T>): Promise<T> {
  let keyRefreshed = false;
  // A call under way when its client is disposed ends the attempt it is in, with that attempt's
  // outcome; none other starts (a retry, the attempt after a key refresh). What the dispose itself
  // ended (the key fetch it cancelled: an abort the caller did not ask for) is told as the dispose.
  let last: unknown;
  const disposed = (cause: unknown) => new DisposedError('the client was disposed while this request was under way', { cause });
  const stopped = (err: unknown, cause: unknown = err) => (ctx.disposal.disposed && err instanceof APIUserAbortError && !call.signal?.aborted ? disposed(cause) : err);
  const once = async () => {
    if (ctx.disposal.disposed) throw disposed(last);
    try {
      return await attempt();
    } catch (err) {
      last = err;
      // Disposed meanwhile: a retryable outcome is not retried (its backoff would only delay the end).
      if (ctx.disposal.disposed && isRetryable(err)) throw disposed(err);
      if (!(err instanceof InvalidRequestError) || err.sealed || keyRefreshed || ctx.disposal.disposed) throw stopped(err);
      // Against the key this attempt was sealed to: a concurrent call may have fetched the new one
      // already, and then it is used without another fetch.
      const cached = ctx.serverKeys.peek();
      const key = cached && cached.fingerprint !== call.sealedTo ? cached : await routerKey(call, (giveUp) => ctx.serverKeys.refresh(giveUp)).catch((e: unknown) => {
        throw stopped(e);
      });
      // Only once the key is in hand: a fetch that failed is retried as an attempt, and its 400 refreshes again.
      keyRefreshed = true;
      if (key.fingerprint === call.sealedTo) throw err;
      if (ctx.disposal.disposed) throw disposed(err);
      return attempt();
    }
  };
  // A backoff ends at the caller's abort (its reason passed on), or at once when the client is disposed.
  const wake = linkedController(call.signal ? [call.signal] : []);
  const unwake = ctx.disposal.onDispose(() => wake.abort());
  try {
    return await withRetries(once, ctx.maxRetries, wake.signal);
  } catch (err) {
    throw stopped(err, last ?? err); // a backoff the dispose ended: told with what it was waiting to retry
  } finally {
    unwake();
    wake.abort();
  }
}

/** A signal that aborts when either does (AbortSignal.any is Node 20.3+); both are the call's own. */
function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  if (!a) return b;
  const controller = new AbortController();
  const abort = (from: AbortSignal) => () => controller.abort(from.reason);
  if (a.aborted || b.aborted) controller.abort((a.aborted ? a : b).reason);
  a.addEventListener('abort', abort(a), { once: true, signal: controller.signal });
  b.addEventListener('abort', abort(b), { once: true, signal: controller.signal });
  return controller.signal;
}
