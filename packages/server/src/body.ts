/** Reading a request body under a size limit, into one buffer. */
import type { IncomingMessage } from 'node:http';

export interface ReceivedBody {
  /** The bytes, or empty when the body went over the limit. */
  bytes: Uint8Array;
  /** Bytes that arrived in total. */
  length: number;
  overLimit: boolean;
  /** Gives the buffer behind `bytes` back, when it came from a pool (only once nothing can still read it). */
  release(): void;
}

/** Where body buffers come from: a pool (buffers reused by later requests) or plain allocation. */
export interface BodyBuffers {
  take(size: number): Uint8Array;
  give(buffer: Uint8Array): void;
}

const EMPTY = new Uint8Array(0);

/**
 * Reads the whole body into one buffer from `buffers`, sized by Content-Length when it is given (each
 * chunk is copied once, nothing is joined afterwards); without one, or when the body turns out longer
 * than declared, the chunks are joined at the end. Past `limit` it stops keeping bytes but still
 * drains the rest, so the client finishes sending and then reads our 413 instead of a reset connection.
 */
export function readBody(req: IncomingMessage, limit: number, buffers: BodyBuffers): Promise<ReceivedBody> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    let buffer = Number.isSafeInteger(declared) && declared > 0 && declared <= limit ? buffers.take(declared) : undefined;
    const chunks: Buffer[] = [];
    let length = 0;
    const drop = () => {
      if (buffer) buffers.give(buffer);
      buffer = undefined;
      chunks.length = 0;
    };
    req.on('data', (chunk: Buffer) => {
      if (length + chunk.length > limit) drop();
      else if (buffer && length + chunk.length <= buffer.length) buffer.set(chunk, length);
      else {
        // Longer than declared (or nothing declared): keep the chunks, joined at the end.
        if (buffer) chunks.push(Buffer.from(buffer.subarray(0, length)));
        if (buffer) buffers.give(buffer);
        buffer = undefined;
        chunks.push(chunk);
      }
      length += chunk.length;
    });
    let ended = false;
    req.once('end', () => {
      ended = true;
      if (length > limit) return resolve({ bytes: EMPTY, length, overLimit: true, release: () => {} });
      if (buffer) {
        const whole = buffer;
        let released = false;
        return resolve({
          bytes: whole.subarray(0, length),
          length,
          overLimit: false,
          release: () => {
            if (!released) buffers.give(whole);
            released = true;
          },
        });
      }
      resolve({ bytes: Buffer.concat(chunks, length), length, overLimit: false, release: () => {} });
    });
    req.once('error', (err) => {
      drop();
      reject(err);
    });
    // A peer that hangs up mid-body gives 'close' without 'end' (and not always 'error').
    req.once('close', () => {
      if (!ended) {
        drop();
        reject(new Error('the client closed the connection before the body ended'));
      }
    });
  });
}
