/**
 * What a streaming test runs in the page: one `stream: true` request with core's browser entry, each
 * chunk timed with `performance.now()` as the `for await` loop gets it, so the timings are the page's
 * own (no driver round trips in them). Shared by every engine's driver: a plain function, no closures.
 */

/** One streamed request as the page saw it. Times are ms after `create()` was called. */
export interface StreamRun {
  /** When `create()` resolved: the answer's header event had come. */
  startedMs: number;
  metadata: { payload_id: string; protocol: number; streamed: boolean; encryption_algorithm: string };
  chunks: Array<{ ms: number; content: string | null }>;
  /** When the page called `stream.controller.abort()`, if it did. */
  abortedMs: number | null;
  /** How the `for await` loop ended: normally, or with the error the page caught (is it core's own APIUserAbortError class?). */
  end: { ok: true } | { ok: false; name: string; code: unknown; isAPIUserAbortError: boolean; message: string };
}

/**
 * Runs in the page: asks the router at `baseUrl` for `message` echoed as a stream, with the core
 * module at `coreUrl`; with `abortAfterFirstWord`, calls `stream.controller.abort()` as soon as a
 * chunk with content has come, and reads on to see how the loop ends.
 */
export async function streamInPage(coreUrl: string, baseUrl: string, message: string, abortAfterFirstWord: boolean): Promise<StreamRun> {
  type Chunk = { choices: Array<{ delta: { content?: string | null } }> };
  type Stream = AsyncIterable<Chunk> & { controller: AbortController; _metadata: StreamRun['metadata'] };
  type Chat = { create(p: unknown): Promise<Stream>; dispose(): Promise<void> };
  type Core = { SecureChatCompletion: new (o: unknown) => Chat; APIUserAbortError: new (...a: never[]) => Error };
  // Built from a string: vitest would rewrite an import() written here, and this runs in the page.
  const load = new Function('url', 'return import(url)') as (url: string) => Promise<Core>;
  const core = await load(coreUrl);
  const chat = new core.SecureChatCompletion({ baseUrl, allowHttp: true });
  try {
    const t0 = performance.now();
    const stream = await chat.create({ model: 'echo', messages: [{ role: 'user', content: message }], stream: true });
    const run: StreamRun = { startedMs: performance.now() - t0, metadata: { ...stream._metadata }, chunks: [], abortedMs: null, end: { ok: true } };
    try {
      for await (const chunk of stream) {
        const content = chunk.choices[0]?.delta.content ?? null;
        run.chunks.push({ ms: performance.now() - t0, content });
        if (abortAfterFirstWord && content && run.abortedMs === null) {
          run.abortedMs = performance.now() - t0;
          stream.controller.abort();
        }
      }
    } catch (err) {
      const e = err as Error & { code?: unknown };
      run.end = { ok: false, name: e.name, code: e.code, isAPIUserAbortError: e instanceof core.APIUserAbortError, message: e.message };
    }
    return run;
  } finally {
    await chat.dispose();
  }
}
