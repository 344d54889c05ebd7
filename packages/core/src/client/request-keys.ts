/**
 * The `K` of a client's next v2 request, made while the client waits for nothing. Making a `K` (32
 * random bytes, imported twice and wrapped to the router's key with RSA-OAEP on Web Crypto's thread
 * pool) is most of what a request costs before it can be sent: about a millisecond on a small
 * machine. Once a request is over, the next one's `K` is made; the next request takes it and sends
 * at once. Only the first request of a client, and one that starts while another is in flight, make
 * their own.
 *
 * One waits at most, for one router key. It is handed to one request only (taken before anything
 * awaits, so two requests never share a `K`), never to a request for another router key (a rotated
 * key drops it), and dropped when the client is disposed. Its raw bytes are zeroed as soon as it is
 * made, as a request's own are: what waits are Web Crypto keys, as a request's answer key does while
 * its answer travels.
 */
import { AES_KEY_BYTES } from '../protocol/constants.js';
import { requestKeyV2, type RequestKeyV2 } from '../protocol/v2.js';
import type { SecureByteContext } from '../memory/context.js';

export class RequestKeyReserve {
  #ready: Promise<RequestKeyV2 | undefined> | undefined;
  /** The router key and the memory of the last request: what the next `K` is made for, and in. */
  #last: { recipient: CryptoKey; secure: SecureByteContext } | undefined;
  #closed = false;

  /** A `K` for one request to `recipient`: the one made ahead for it, else a fresh one. */
  async take(recipient: CryptoKey, secure: SecureByteContext): Promise<RequestKeyV2> {
    const ready = this.#last?.recipient === recipient ? this.#ready : undefined;
    this.#ready = undefined;
    if (!this.#closed) this.#last = { recipient, secure };
    return (await ready) ?? freshKey(recipient, secure);
  }

  /**
   * Makes the next request's `K`, for the router key of the last request, unless one is waiting or
   * being made. Called when a request is over, so that the work never competes with a request's own.
   */
  refill(): void {
    const last = this.#last;
    if (this.#closed || this.#ready || !last) return;
    // A failure here costs nothing: the next request makes its own K, and reports what fails.
    this.#ready = freshKey(last.recipient, last.secure).catch(() => undefined);
  }

  /** Drops the waiting `K`, and makes no more (the client is disposed). */
  close(): void {
    this.#closed = true;
    this.#ready = undefined;
    this.#last = undefined;
  }
}

/** A fresh `K` in secure memory, made ready and zeroed. */
function freshKey(recipient: CryptoKey, secure: SecureByteContext): Promise<RequestKeyV2> {
  return secure.use(secure.randomBytes(AES_KEY_BYTES), (k) => requestKeyV2(k, recipient));
}
