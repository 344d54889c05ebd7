/**
 * A client's disposed state: asked by each of its calls before anything starts, and told to the
 * requests under way (request-flow.ts: no attempt starts after it, a backoff ends at once).
 */
import { DisposedError } from '../errors.js';

export class Disposal {
  #disposed = false;
  readonly #listeners = new Set<() => void>();

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Runs `wake` when the client is disposed; returns what stops that (call it once the request is over). */
  onDispose(wake: () => void): () => void {
    this.#listeners.add(wake);
    return () => this.#listeners.delete(wake);
  }

  dispose(): void {
    this.#disposed = true;
    for (const wake of this.#listeners) wake();
    this.#listeners.clear();
  }

  /** @throws DisposedError once the client is disposed. */
  assertUsable(): void {
    if (this.#disposed) throw new DisposedError('this client was disposed; create a new one');
  }
}
