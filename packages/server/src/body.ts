/** Reading a request body under a size limit. */
import type { IncomingMessage } from 'node:http';

export interface ReceivedBody {
  /** The bytes, or empty when the body went over the limit. */
  bytes: Uint8Array;
  /** Bytes that arrived in total. */
  length: number;
  overLimit: boolean;
}

/**
 * Reads the whole body. Past `limit` it stops keeping bytes but still drains the rest, so the
 * client finishes sending and then reads our 413 instead of a reset connection.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<ReceivedBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    let ended = false;
    req.once('end', () => {
      ended = true;
      const overLimit = length > limit;
      resolve({ bytes: overLimit ? new Uint8Array(0) : new Uint8Array(Buffer.concat(chunks, length)), length, overLimit });
    });
    req.once('error', reject);
    // A peer that hangs up mid-body gives 'close' without 'end' (and not always 'error').
    req.once('close', () => {
      if (!ended) reject(new Error('the client closed the connection before the body ended'));
    });
  });
}
