/** Reading a request body under a size limit, into one buffer. */
import type { IncomingMessage } from 'node:http';
import { owned, type ByteSource, type OwnedBytes } from '@nomyo/core/internal';
import type { HttpError } from './http-error.js';

export interface ReceivedBody {
  /** The bytes (empty when the body went over the limit), which the caller releases or hands on. */
  body: OwnedBytes;
  /** Bytes that arrived in total. */
  length: number;
  overLimit: boolean;
  /** Refused whatever it holds (a secure completion without the API key: drained unkept): what to answer. */
  refused?: HttpError | undefined;
  /** A body the client announced and was not asked to send (Expect: 100-continue). */
  unsent?: boolean;
}

const EMPTY = owned(new Uint8Array(0), false, () => {});

/** A body announced and left unsent (see {@link ReceivedBody.unsent}). */
export function unsentBody(overLimit: boolean, refused: HttpError | undefined): ReceivedBody {
  return { body: EMPTY, length: 0, overLimit, refused, unsent: true };
}

/**
 * Reads the whole body into one buffer from `into`, sized by Content-Length when it is given (each
 * chunk is copied once, nothing is joined afterwards); without one, or when the body turns out longer
 * than declared, the chunks are joined at the end. Past `limit` it stops keeping bytes but still
 * drains the rest, so the client finishes sending and then reads our 413 instead of a reset connection.
 */
export function readBody(req: IncomingMessage, limit: number, into: ByteSource): Promise<ReceivedBody> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    let buffer = Number.isSafeInteger(declared) && declared > 0 && declared <= limit ? into.take(declared) : undefined;
    const chunks: Buffer[] = [];
    let length = 0;
    const drop = () => {
      buffer?.release();
      buffer = undefined;
      chunks.length = 0;
    };
    req.on('data', (chunk: Buffer) => {
      if (length + chunk.length > limit) drop();
      else if (buffer && length + chunk.length <= buffer.bytes.length) buffer.bytes.set(chunk, length);
      else {
        // Longer than declared (or nothing declared): keep the chunks, joined at the end.
        if (buffer) chunks.push(Buffer.from(buffer.bytes.subarray(0, length)));
        buffer?.release();
        buffer = undefined;
        chunks.push(chunk);
      }
      length += chunk.length;
    });
    let ended = false;
    req.once('end', () => {
      ended = true;
      if (length > limit) return resolve({ body: EMPTY, length, overLimit: true });
      if (buffer) {
        const whole = buffer;
        return resolve({ body: owned(whole.bytes.subarray(0, length), whole.secure, () => whole.release()), length, overLimit: false });
      }
      const joined = Buffer.concat(chunks, length);
      resolve({ body: owned(new Uint8Array(joined.buffer, joined.byteOffset, joined.length), false, () => {}), length, overLimit: false });
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
