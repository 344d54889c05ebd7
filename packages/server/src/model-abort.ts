/**
 * A model must stop when its signal aborts (its client gone, or the drain's deadline passed). One that
 * does not (a custom CompletionModel that never looks at `ctx.signal`, or that waits on something that
 * never settles) is not waited for past {@link MODEL_ABORT_GRACE_MS}: its request ends without it (a
 * stream with its final record at the drain's deadline, well within the drain's last second), and its
 * place, its metrics and its log line are not held for as long as it hangs. The wait is raced once per
 * request (the model's call) and once per stream (its whole loop), never once per chunk: a token's
 * path stays as it was.
 */

/** How long a model has, once its signal has aborted, to stop. */
export const MODEL_ABORT_GRACE_MS = 250;

/** What a request left its model behind with: the model went on after its signal aborted. */
export class DeafModelError extends Error {
  constructor() {
    super(`the model went on ${MODEL_ABORT_GRACE_MS} ms after its signal aborted`);
    this.name = 'DeafModelError';
  }
}

/**
 * `work`, until `signal` aborts; from then on {@link MODEL_ABORT_GRACE_MS} more at most, after which,
 * if it still waits on the model (`onModel`: a stream's loop may wait on its client instead, which
 * its own limits end), `onDeaf` is told and the result rejects with a DeafModelError (what `work`
 * does later goes nowhere).
 */
export function heeding<T>(work: Promise<T>, signal: AbortSignal, onDeaf: () => void, onModel: () => boolean = () => true): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      timer = setTimeout(() => {
        if (!onModel()) return;
        onDeaf();
        reject(new DeafModelError());
      }, MODEL_ABORT_GRACE_MS);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

/**
 * Tells the model to stop (`return()`), and waits for it to finish, unless it is deaf to its signal:
 * a generator still inside its `next()` takes `return()` only after it, so for a model left waiting
 * that would be never.
 */
export async function stopModel(iterator: AsyncIterator<unknown> | undefined, signal: AbortSignal, deaf: boolean, onDeaf: () => void): Promise<void> {
  const stopped = Promise.resolve().then(() => iterator?.return?.());
  if (deaf) return void stopped.catch(() => undefined);
  await heeding(stopped, signal, onDeaf).catch(() => undefined);
}
