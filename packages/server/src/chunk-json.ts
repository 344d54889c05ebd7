/**
 * A streamed chunk made the JSON its record seals, checked as the client will check it: a broken
 * upstream is reported as such, not as an attack. One too long to be a record would fail in the
 * sealer, reported as a bug of ours: it is the upstream's, and refused here as such.
 */
import { MAX_ANSWER_DEPTH, MAX_STREAM_RECORD_BYTES, checkChatCompletionChunk, jsonNestingExceeds } from '@nomyo/core/protocol';
import { MIB } from './constants.js';
import { isCheckedOutput } from './envelope.js';
import { HttpError, nestedTooDeep } from './http-error.js';
import type { UpstreamReport } from './types.js';

/**
 * `chunk`'s JSON. A refusal is counted in `upstream` (the metrics' `malformed`) when an upstream
 * answered the request: its chunk, not a custom model's.
 */
export function chunkJson(chunk: unknown, upstream?: UpstreamReport): string {
  // An upstream's chunk was checked as it was normalised (envelope.ts), its line's nesting as it was
  // read (upstream-stream.ts): once is enough, on every token. A custom model's is checked here.
  const fromUpstream = isCheckedOutput(chunk);
  if (!fromUpstream) {
    try {
      checkChatCompletionChunk(chunk);
    } catch {
      throw refused(upstream, 'the inference backend sent a malformed chunk');
    }
  }
  const json = JSON.stringify(chunk);
  // The client refuses a chunk nested deeper (as an attack): the model's fault, said as such.
  if (!fromUpstream && jsonNestingExceeds(json, MAX_ANSWER_DEPTH)) throw refused(upstream, nestedTooDeep('a chunk'));
  // At most three UTF-8 bytes a UTF-16 unit: most chunks are measured without a pass over their text.
  if (json.length * 3 > MAX_STREAM_RECORD_BYTES && Buffer.byteLength(json, 'utf8') > MAX_STREAM_RECORD_BYTES) {
    throw refused(upstream, `the inference backend sent a chunk over ${MAX_STREAM_RECORD_BYTES / MIB} MiB`);
  }
  return json;
}

function refused(upstream: UpstreamReport | undefined, detail: string): HttpError {
  if (upstream?.status !== undefined) upstream.failure ??= 'malformed';
  return new HttpError(502, detail);
}
