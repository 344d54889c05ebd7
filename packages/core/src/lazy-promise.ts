/**
 * A promise whose work starts only once something awaits it (or calls then, catch or finally). v2's
 * answer key is one: a streamed answer never needs it (only a sealed error or a whole answer does),
 * and deriving it at once put about 0.3 ms of work before the request was sent (client) and before
 * it was forwarded (router), on a small machine. Work that nothing awaits never runs, so it can never
 * fail unhandled either.
 */
export function lazyPromise<T>(make: () => Promise<T>): Promise<T> {
  return new LazyPromise(make);
}

class LazyPromise<T> extends Promise<T> {
  // What then() makes (and catch, finally, await) is a plain promise, not another lazy one.
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  #start: (() => void) | undefined;

  constructor(make: () => Promise<T>) {
    let start!: () => void;
    super((resolve, reject) => {
      start = () => void Promise.resolve().then(make).then(resolve, reject);
    });
    this.#start = start;
  }

  override then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    const start = this.#start;
    this.#start = undefined;
    start?.();
    return super.then(onfulfilled, onrejected);
  }
}
