/**
 * Streams their caller lets go of without reading them to the end or aborting them: each is aborted
 * once the runtime collects it, so its connection closes and its call lets go of the caller's signal.
 * Nothing else would free them: a body being read (its reader holds the lock) is not cancelled when
 * its Response is collected, and a router does not give up on a client whose socket buffers have
 * taken the whole answer. What is watched is what the caller holds: the stream until it is iterated,
 * then its iterator (a `for await` holds only that). A stream's end, however it ends, stops the watch.
 */

const dropped = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<AbortController>(abortDropped) : undefined;

/** Runs whenever the collector says, in no request's context: Workers refuse I/O of another request's, and nothing may escape. */
function abortDropped(controller: AbortController): void {
  try {
    controller.abort();
  } catch {
    // The stream's connection stays to its router's end, as before this watch.
  }
}

/** Aborts `controller` once `holder` is collected, unless {@link unwatchStream} came first; replaces an earlier watch. */
export function watchStream(holder: object, controller: AbortController): void {
  dropped?.unregister(controller);
  dropped?.register(holder, controller, controller);
}

/** The stream of `controller` ended (read to its end, aborted, failed): nothing to abort when it is collected. */
export function unwatchStream(controller: AbortController): void {
  dropped?.unregister(controller);
}
