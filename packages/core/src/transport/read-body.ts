/** Reading a response body under a cap: as text (error bodies), or as bytes into one buffer (packages). */
import { SecurityError } from '../errors.js';
import { head, type ByteSource, type OwnedBytes } from '../memory/owned-bytes.js';
import { FIRST_BODY_BUFFER_BYTES, LARGE_BODY_BYTES } from '../sizes.js';

const decoder = new TextDecoder();

/**
 * The body as text, at most `limit` bytes: beyond it a package is refused (`truncate` false) or an
 * error body is cut (`truncate` true; only its first 100 characters are ever shown). Once `signal`
 * aborts, the body is cancelled: give it for a body that may not heed the exchange's own signal.
 */
export async function readText(response: Response, limit: number, truncate: boolean, signal?: AbortSignal): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  // HTTP framing holds the body to its Content-Length: the runtime's own reader is then safe and
  // fastest. It locks the body, though, which could then not be cancelled: not with a `signal`. And
  // not for an encoded body: fetch undoes a Content-Encoding, so a few hundred bytes of brotli on
  // the wire could become gigabytes of text (Content-Length counts the encoded bytes).
  if (declared <= limit && signal === undefined && !encoded(response)) return response.text();
  if (declared > limit && !truncate) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit);
  }
  if (!response.body) return '';
  const reader = heedingReader(response.body, signal);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.length > limit) {
        await reader.cancel();
        if (!truncate) throw tooLarge(limit);
        chunks.push(value.subarray(0, limit - total));
        total = limit;
        break;
      }
      chunks.push(value);
      total += value.length;
    }
  } finally {
    reader.done();
  }
  if (chunks.length === 1) return decoder.decode(chunks[0]);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return decoder.decode(all);
}

/** Whether the body came with a Content-Encoding that fetch undoes (anything but `identity`). */
function encoded(response: Response): boolean {
  const encoding = response.headers.get('content-encoding');
  return encoding !== null && encoding.trim().toLowerCase() !== 'identity';
}

/**
 * Reads `response`'s body as bytes into one buffer taken from `into`, at most `limit` bytes: no text,
 * no second copy. Beyond the limit, or on any failure, the buffer is released, the body cancelled, and
 * a SecurityError (or the failure) thrown. Content-Length only sizes the buffer, and up to
 * FIRST_BODY_BUFFER_BYTES until that much has come: a body that turns out longer (a Content-Encoding
 * the runtime undid) grows it, up to `limit`; a declared length above `limit` is refused before
 * anything is read. Without one, the first buffer is LARGE_BODY_BYTES.
 * Once `signal` aborts, the body is cancelled and its buffer released.
 * @returns the body, which the caller releases.
 */
export async function readBodyBytes(response: Response, limit: number, into: ByteSource, signal?: AbortSignal): Promise<OwnedBytes> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(limit);
  }
  if (!response.body) return into.take(0);
  const reader = heedingReader(response.body, signal);
  const sized = Number.isSafeInteger(declared) && declared >= 0;
  let buffer = into.take(sized ? Math.min(declared, FIRST_BODY_BUFFER_BYTES) : Math.min(limit, LARGE_BODY_BYTES));
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const needed = length + value.length;
      if (needed > buffer.bytes.length) {
        if (needed > limit) {
          await reader.cancel();
          throw tooLarge(limit);
        }
        // The declared length once the body has come this far; else (a Content-Encoding the runtime undid) twice the buffer.
        const larger = into.take(sized && declared >= needed ? declared : Math.min(limit, Math.max(buffer.bytes.length * 2, needed)));
        larger.bytes.set(buffer.bytes.subarray(0, length));
        buffer.release();
        buffer = larger;
      }
      buffer.bytes.set(value, length);
      length += value.length;
    }
    return head(buffer, length);
  } catch (err) {
    buffer.release();
    throw err;
  } finally {
    reader.done();
  }
}

/**
 * A reader of `body` that heeds `signal`: once it aborts, the body is cancelled (a custom fetch's may
 * not heed the exchange's own signal: its read, and the buffer it fills, are not left waiting on it),
 * and `read` throws the abort's reason, since what was read is no body. `done` when finished with it.
 */
function heedingReader(body: ReadableStream<Uint8Array>, signal: AbortSignal | undefined) {
  const reader = body.getReader();
  const cancel = () => reader.cancel().catch(() => undefined);
  const onAbort = () => void cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
      const result = await reader.read();
      if (signal?.aborted) throw signal.reason;
      return result;
    },
    cancel,
    done(): void {
      signal?.removeEventListener('abort', onAbort);
      reader.releaseLock();
    },
  };
}

/** A response body over the cap: refused, whatever it holds. */
export function tooLarge(limit: number): SecurityError {
  return new SecurityError(`the router's response exceeds ${limit} bytes: refused`);
}
