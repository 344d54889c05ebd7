/**
 * The key of a client's next request, made while the client waits for nothing. A request's key (v2:
 * `K`, 32 random bytes imported twice; v1: a fresh AES key) wrapped to the router's key with
 * RSA-OAEP on Web Crypto's thread pool is most of what a request costs before it can be sent: about
 * a millisecond on a small machine. Once a request is over, the next one's key is made; the next
 * request takes it and sends at once. Only the first request of a client, and one that starts while
 * another is in flight, make their own.
 *
 * One waits at most, per version, for one router key. It is handed to one request only (taken before
 * anything awaits, so two requests never share a key), never to a request for another router key (a
 * rotated key drops it), and dropped when the client is disposed. v2's `K` is drawn into secure
 * memory and zeroed as soon as it is made, as a request's own is: what waits are Web Crypto keys, as
 * a request's answer key does while its answer travels.
 */
import { AES_KEY_BYTES } from '../protocol/constants.js';
import { packageKeyV1, type PackageKeyV1 } from '../protocol/package.js';
import { requestKeyV2, type RequestKeyV2 } from '../protocol/v2.js';
import type { SecureByteContext } from '../memory/context.js';

/** Makes one key for a request to `recipient`, its secrets in `secure`. */
type MakeKey<T> = (recipient: CryptoKey, secure: SecureByteContext) => Promise<T>;

/** One version's next request key (see the module's comment). */
export class KeyReserve<T> {
  #ready: Promise<T | undefined> | undefined;
  /** The router key and the memory of the last request: what the next key is made for, and in. */
  #last: { recipient: CryptoKey; secure: SecureByteContext } | undefined;
  #closed = false;

  constructor(private readonly make: MakeKey<T>) {}

  /** A key for one request to `recipient`: the one made ahead for it, else a fresh one. */
  async take(recipient: CryptoKey, secure: SecureByteContext): Promise<T> {
    const ready = this.#last?.recipient === recipient ? this.#ready : undefined;
    this.#ready = undefined;
    if (!this.#closed) this.#last = { recipient, secure };
    return (await ready) ?? this.make(recipient, secure);
  }

  /**
   * Makes the next request's key, for the router key of the last request, unless one is waiting or
   * being made, or no request has taken one yet.
   */
  refill(): void {
    const last = this.#last;
    if (this.#closed || this.#ready || !last) return;
    // A failure here costs nothing: the next request makes its own, and reports what fails.
    this.#ready = this.make(last.recipient, last.secure).catch(() => undefined);
  }

  /**
   * Drops the waiting key, and makes no more; resolves once a key being made is done (v2: its `K`
   * zeroed), so that no secret of the client outlives its disposal.
   */
  async close(): Promise<void> {
    const making = this.#ready;
    this.#closed = true;
    this.#ready = undefined;
    this.#last = undefined;
    await making;
  }
}

/** A client's next request keys, one reserve per version. */
export class NextRequestKeys {
  /** v1: a fresh AES key wrapped to the router's key. */
  readonly v1 = new KeyReserve<PackageKeyV1>((recipient) => packageKeyV1(recipient));
  /** v2: a fresh `K` in secure memory, made ready and zeroed. */
  readonly v2 = new KeyReserve<RequestKeyV2>((recipient, secure) => secure.use(secure.randomBytes(AES_KEY_BYTES), (k) => requestKeyV2(k, recipient)));

  /**
   * A request is over: makes the next key of each version a request has used. Called then, so that
   * the work never competes with a request's own.
   */
  refill(): void {
    this.v1.refill();
    this.v2.refill();
  }

  /** The client is disposed: drops the waiting keys, and makes no more; resolves once none is being made. */
  async close(): Promise<void> {
    await Promise.all([this.v1.close(), this.v2.close()]);
  }
}
