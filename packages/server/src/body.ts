/** Reading a request body under a size limit, into one buffer that grows as the body arrives. */
import type { IncomingMessage } from 'node:http';
import { LARGE_BODY_BYTES, owned, type ByteSource, type OwnedBytes } from '@nomyo/core/internal';
import { FIRST_BODY_BLOCK_BYTES } from './constants.js';
import type { HttpError } from './http-error.js';

export interface ReceivedBody {
  /** The bytes (empty when the body went over the limit, or was not read), which the caller releases or hands on. */
  body: OwnedBytes;
  /** Bytes that arrived in total (up to the one that went over the limit). */
  length: number;
  overLimit: boolean;
  /** Refused whatever it holds (a secure completion without the API key): what to answer. */
  refused?: HttpError | undefined;
  /** A body announced and not read (see receive.ts): its connection is closed after the answer. */
  unsent?: boolean;
}

/** The client went away, or Node refused the request (its request timeout), before the body ended. */
export class BodyCutOff extends Error {
  constructor(
    /** Body bytes that had arrived. */
    readonly received: number,
  ) {
    super('the body did not end');
    this.name = 'BodyCutOff';
  }
}

const EMPTY = owned(new Uint8Array(0), false, () => {});

/** A request without a body (or none read yet), refused or not. */
export function noBody(refused: HttpError | undefined): ReceivedBody {
  return { body: EMPTY, length: 0, overLimit: false, refused };
}

/** A body announced and left unread (see {@link ReceivedBody.unsent}). */
export function unsentBody(overLimit: boolean, refused: HttpError | undefined): ReceivedBody {
  return { body: EMPTY, length: 0, overLimit, refused, unsent: true };
}

/**
 * Reads the whole body into one buffer from `into`. Its Content-Length (which Node holds the body
 * to) is only the client's word: the first buffer is at most FIRST_BODY_BLOCK_BYTES (a chunked
 * body's LARGE_BODY_BYTES), and it doubles as the body fills it, up to the declared length (or the
 * limit), so what is reserved stays within twice what has come. The moment the body passes `limit`
 * the buffer is given back and reading stops (the request paused: the client's sending stalls
 * until its connection is closed after the 413), not read on to its end.
 * Rejects with {@link BodyCutOff} when the body does not end.
 */
export function readBody(req: IncomingMessage, limit: number, into: ByteSource): Promise<ReceivedBody> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const sized = Number.isSafeInteger(declared) && declared >= 0;
    const most = sized ? Math.min(declared, limit) : limit;
    const first = sized ? FIRST_BODY_BLOCK_BYTES : LARGE_BODY_BYTES;
    let buffer: OwnedBytes | undefined;
    let length = 0;
    let settled = false;
    const settle = (): void => {
      settled = true;
      req.off('data', onData);
    };
    const onData = (chunk: Buffer): void => {
      const needed = length + chunk.length;
      if (needed > limit) {
        settle();
        req.pause();
        buffer?.release();
        return resolve({ body: EMPTY, length: needed, overLimit: true });
      }
      if (!buffer || needed > buffer.bytes.length) {
        const larger = into.take(Math.min(most, Math.max(buffer ? buffer.bytes.length * 2 : first, needed)));
        if (buffer) larger.bytes.set(buffer.bytes.subarray(0, length));
        buffer?.release();
        buffer = larger;
      }
      buffer.bytes.set(chunk, length);
      length = needed;
    };
    req.on('data', onData);
    req.once('end', () => {
      if (settled) return;
      settle();
      const whole = buffer;
      if (!whole) return resolve({ body: EMPTY, length: 0, overLimit: false });
      resolve({ body: owned(whole.bytes.subarray(0, length), whole.secure, () => whole.release()), length, overLimit: false });
    });
    // A peer that hangs up mid-body gives 'close' without 'end' (and not always 'error').
    const cutOff = (): void => {
      if (settled) return;
      settle();
      buffer?.release();
      reject(new BodyCutOff(length));
    };
    req.once('error', cutOff);
    req.once('close', cutOff);
  });
}
