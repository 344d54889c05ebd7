/**
 * The router's public key: validated on arrival, cached, refreshed after a TTL or on demand.
 * Concurrent callers share one fetch, so a burst of first requests makes one round trip.
 */
import { derToPem, pemToDer } from '../crypto/pem.js';
import { spkiFingerprint } from '../crypto/fingerprint.js';
import { importRsaPublicKey, modulusBits } from '../crypto/rsa.js';
import type { ProtocolVersion } from '../protocol/constants.js';
import { parseProtocolHeader } from '../protocol/versions.js';
import { SecurityError } from '../errors.js';

/** The router's public key, checked (SPKI, RSA, at least 2048 bits, the pin), with what its response advertised. */
export interface ServerKey {
  /** RSA-OAEP-SHA256 public key that requests are sealed to. */
  readonly key: CryptoKey;
  /** SPKI PEM, made anew from the key's DER: nothing else of what the router served is kept. */
  readonly pem: string;
  /** Hex SHA-256 of the SPKI DER. */
  readonly fingerprint: string;
  /** The modulus size. */
  readonly bits: number;
  /** The protocol versions the key response advertised (X-Nomyo-Protocol), ascending; `[1]` without the header. */
  readonly protocols: readonly ProtocolVersion[];
}

/**
 * Parses and checks a router's PEM: SPKI, RSA, at least 2048 bits. `protocolHeader` is the key
 * response's X-Nomyo-Protocol value (absent: the router speaks v1 only).
 */
export async function parseServerKey(pem: string, protocolHeader?: string | null): Promise<ServerKey> {
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) throw new SecurityError('the router sent no SPKI PEM public key');
  const der = pemToDer(pem, 'PUBLIC KEY');
  const key = await importRsaPublicKey(der);
  const protocols = Object.freeze([...parseProtocolHeader(protocolHeader)]);
  return Object.freeze({ key, pem: derToPem(der, 'PUBLIC KEY'), fingerprint: await spkiFingerprint(der), bits: modulusBits(key), protocols });
}

export class ServerKeyCache {
  #key: ServerKey | undefined;
  #fetchedAt = 0;
  #inflight: Promise<ServerKey> | undefined;
  /** Cancels the fetch under way: once every caller waiting for it has given up, or on {@link clear}. */
  #cancel: AbortController | undefined;
  /** Callers of the fetch under way that may still give up (Infinity: one waits whatever happens). */
  #waiters = 0;
  /** Counts {@link clear}s: a fetch that settles after one keeps its key to itself (a disposed client caches nothing). */
  #cleared = 0;

  constructor(
    /** Fetches the key; `signal` aborts once nobody waits for it any more (its connection closed, its timers gone). */
    private readonly fetchKey: (signal: AbortSignal) => Promise<ServerKey>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached key while it is younger than the TTL, else a fresh one (see {@link refresh} for `giveUp`). */
  get(giveUp?: AbortSignal): Promise<ServerKey> {
    const key = this.fresh();
    return key ? Promise.resolve(key) : this.refresh(giveUp);
  }

  /** The cached key while it is younger than the TTL (no promise, no timer: a request's usual case), else undefined. */
  fresh(): ServerKey | undefined {
    return this.#key && this.now() - this.#fetchedAt < this.ttlMs ? this.#key : undefined;
  }

  /**
   * Fetches the key again (joining a fetch already under way). Given `giveUp`, the wait ends as it
   * aborts, with its reason; the fetch goes on while anyone else still waits for it, and is
   * cancelled once nobody does (a process whose requests were all aborted is not held open by it).
   */
  refresh(giveUp?: AbortSignal): Promise<ServerKey> {
    if (giveUp?.aborted) return Promise.reject(giveUp.reason);
    const inflight = (this.#inflight ??= this.#fetch());
    if (!giveUp) {
      this.#waiters = Infinity;
      return inflight;
    }
    this.#waiters++;
    return new Promise<ServerKey>((resolve, reject) => {
      const onGiveUp = () => {
        reject(giveUp.reason);
        if (this.#inflight === inflight && --this.#waiters === 0) this.#cancelFetch();
      };
      giveUp.addEventListener('abort', onGiveUp, { once: true });
      inflight.then(resolve, reject).finally(() => giveUp.removeEventListener('abort', onGiveUp));
    });
  }

  /** A fetch of the key, which {@link #cancelFetch} cancels. */
  #fetch(): Promise<ServerKey> {
    const cancel = new AbortController();
    this.#cancel = cancel;
    this.#waiters = 0;
    // Settled, it is nothing to cancel any more: a later cancel (a dispose) must not touch its
    // signal (Workers refuse an abort of a fetch from another request's context).
    const settled = () => {
      if (this.#inflight === fetched) this.#inflight = undefined;
      if (this.#cancel === cancel) this.#cancel = undefined;
    };
    const cleared = this.#cleared;
    const fetched: Promise<ServerKey> = this.fetchKey(cancel.signal).then(
      (key) => {
        settled();
        if (this.#cleared === cleared) {
          this.#key = key;
          this.#fetchedAt = this.now();
        }
        return key;
      },
      (err: unknown) => {
        settled();
        throw err;
      },
    );
    // Cancelled once nobody waits: its failure then goes to no one.
    fetched.catch(() => undefined);
    return fetched;
  }

  /** Cancels the fetch under way, detached first: a caller that comes meanwhile starts a fresh one instead of joining it. */
  #cancelFetch(): void {
    const cancel = this.#cancel;
    this.#cancel = undefined;
    this.#inflight = undefined;
    cancel?.abort();
  }

  peek(): ServerKey | undefined {
    return this.#key;
  }

  /**
   * Drops the key, and cancels a fetch under way (the client is disposed). Resolves once that fetch
   * has settled: what it does once its response is in (the checks, a trust store's writes) is over.
   */
  clear(): Promise<void> {
    this.#cleared++;
    this.#key = undefined;
    const inflight = this.#inflight;
    this.#cancelFetch();
    return inflight ? inflight.then(() => undefined, () => undefined) : Promise.resolve();
  }
}
