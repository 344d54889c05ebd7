/**
 * The holder of the client's key pair: one generation at a time, rotation in the background,
 * dispose.
 *
 * Every change of key (first generation, loading, rotation) runs through a promise-chain mutex, so
 * any number of concurrent first calls produce exactly one pair. Rotation never makes a request
 * wait: the next pair is prepared half-way through the interval, and when the interval is up the
 * switch happens in the background; until it is done (saved, when keys live in files) requests
 * keep using the current pair. A request holds its own snapshot of the pair, so a switch while it
 * is in flight cannot break it.
 */
import { MAX_TIMER_MS } from '../env.js';
import { DisposedError } from '../errors.js';
import type { ClientKeyPair } from './client-keys.js';

/** Where a holder gets its first key pair from (generated in memory, or loaded from files). */
export type KeyPairFactory = () => Promise<ClientKeyPair>;

/** A generated pair not yet in use: `activate` makes it the usable pair (saving it first when keys live in files). */
export interface PendingKeyPair {
  activate(): Promise<ClientKeyPair>;
}

export interface KeyHolderOptions {
  /** Milliseconds a pair is used before the next replaces it; 0 (default) never rotates. */
  rotationInterval?: number;
  /** Makes the pair for the next rotation. */
  prepare?: () => Promise<PendingKeyPair>;
  /** A background rotation failed; the current pair stays in use and it is tried again later. */
  onError?: (err: unknown) => void;
  /** The clock (tests pass a fake one). */
  now?: () => number;
  /** false: no timer, rotation is only checked when a pair is asked for (fake-clock tests). */
  timer?: boolean;
}

type Timer = ReturnType<typeof setTimeout>;

export class ClientKeyHolder {
  #chain: Promise<unknown> = Promise.resolve();
  #current: ClientKeyPair | undefined;
  #since = 0;
  /** The prepared next pair; resolves undefined when preparing failed (already reported). */
  #next: Promise<PendingKeyPair | undefined> | undefined;
  #rotating: Promise<void> | undefined;
  /** Background work (preparations, rotations) still running: dispose waits for it. */
  readonly #background = new Set<Promise<unknown>>();
  #disposing: Promise<void> | undefined;
  #retryAt = 0;
  #timer: Timer | undefined;
  #disposed = false;
  readonly #interval: number;
  readonly #prepare: (() => Promise<PendingKeyPair>) | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #now: () => number;
  readonly #useTimer: boolean;

  constructor(
    private readonly factory: KeyPairFactory,
    options: KeyHolderOptions = {},
  ) {
    this.#interval = options.prepare ? (options.rotationInterval ?? 0) : 0;
    this.#prepare = options.prepare;
    this.#onError = options.onError ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#useTimer = options.timer ?? true;
  }

  /** Runs `fn` alone: no other key change starts until it settles. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** The key pair to use for the next request, made (once) on first use. Never waits on a rotation. */
  async current(): Promise<ClientKeyPair> {
    this.#assertUsable();
    const pair = this.#current;
    if (pair) {
      // Lazy check as well as the timer: a timer can fire late (suspended laptop, busy loop).
      this.#tick();
      return pair;
    }
    return this.exclusive(async () => {
      this.#assertUsable();
      if (!this.#current) {
        const made = await this.factory();
        // Disposed while the pair was being made (or loaded): it must not become usable.
        this.#assertUsable();
        this.#install(made);
      }
      return this.#current!;
    });
  }

  /** The pair in use now, without creating one. */
  peek(): ClientKeyPair | undefined {
    return this.#current;
  }

  /** Replaces the pair (after loading or generating keys explicitly); the rotation clock restarts. */
  replace(pair: ClientKeyPair): Promise<void> {
    return this.exclusive(async () => {
      this.#assertUsable();
      this.#install(pair);
    });
  }

  /** Resolves when no background preparation or rotation is running (tests and benchmarks). */
  async settled(): Promise<void> {
    while (this.#rotating || (this.#next && (await isPending(this.#next)))) {
      await this.#rotating;
      await this.#next;
    }
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Cancels the timer and drops every key reference; every later call fails with DisposedError.
   * Resolves once the key changes already running (first generation, a preparation, a rotation that
   * is saving its pair) have settled, so nothing is written after it; none of them installs a pair.
   * A second call returns the same promise. CryptoKey objects cannot be zeroed from JavaScript:
   * dropping them is all that can be done.
   */
  dispose(): Promise<void> {
    if (this.#disposing) return this.#disposing;
    this.#disposed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#current = undefined;
    this.#next = undefined;
    // The chain holds every exclusive change (first generation, replace, rotation); preparations run beside it.
    const running = [this.#chain, ...this.#background];
    this.#disposing = Promise.allSettled(running).then(() => {
      this.#current = undefined;
      this.#next = undefined;
    });
    return this.#disposing;
  }

  #install(pair: ClientKeyPair): void {
    this.#current = pair;
    this.#since = this.#now();
    this.#next = undefined;
    this.#retryAt = 0;
    this.#schedule();
  }

  #tick(): void {
    if (this.#disposed || !this.#current || this.#interval === 0) return;
    const now = this.#now();
    const age = now - this.#since;
    if (now < this.#retryAt) return;
    if (age >= this.#interval / 2 && !this.#next) {
      this.#next = this.#startPrepare();
      this.#schedule();
    }
    if (age >= this.#interval && !this.#rotating) this.#rotate();
  }

  #startPrepare(): Promise<PendingKeyPair | undefined> {
    const next: Promise<PendingKeyPair | undefined> = this.#prepare!().catch((err: unknown) => {
      // Only this preparation is forgotten: the pair may have been replaced and another started since.
      if (this.#next === next) this.#next = undefined;
      this.#fail(err);
      return undefined;
    });
    this.#track(next);
    return next;
  }

  #rotate(): void {
    // The pair this rotation replaces: if another has been installed by the time it runs (the user
    // loaded or generated one, queued before it), that pair is newer and stays.
    const from = this.#current;
    const stale = () => this.#disposed || this.#current !== from;
    const run = this.exclusive(async () => {
      // A preparation that failed meanwhile has set a back-off: wait for it rather than retry at once.
      if (stale() || this.#now() < this.#retryAt) return;
      const pending = await (this.#next ??= this.#startPrepare());
      if (!pending || stale()) return;
      const pair = await pending.activate();
      if (!stale()) this.#install(pair);
    });
    const rotating = run
      .catch((err: unknown) => this.#fail(err))
      .finally(() => {
        if (this.#rotating === rotating) this.#rotating = undefined;
        this.#schedule();
      });
    this.#rotating = rotating;
    this.#track(rotating);
  }

  #track(work: Promise<unknown>): void {
    this.#background.add(work);
    const forget = () => this.#background.delete(work);
    work.then(forget, forget);
  }

  #fail(err: unknown): void {
    // Back off so a persistent failure (a full disk) is not retried on every request.
    this.#retryAt = this.#now() + Math.min(this.#interval, 60_000);
    if (!this.#disposed) this.#onError(err);
  }

  #schedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#useTimer || this.#disposed || !this.#current || this.#interval === 0 || this.#rotating) return;
    const due = this.#since + (this.#next ? this.#interval : this.#interval / 2);
    const delay = Math.min(Math.max(due, this.#retryAt) - this.#now(), MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
      if (this.#timer === undefined) this.#schedule();
    }, Math.max(0, delay));
    // Never keep the process alive for a rotation (Node); browsers return a number and need nothing.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #assertUsable(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed; create a new one');
  }
}

async function isPending(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol();
  return (await Promise.race([p, Promise.resolve(marker)])) === marker;
}
