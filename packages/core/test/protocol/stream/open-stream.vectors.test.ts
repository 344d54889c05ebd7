/**
 * The streamed-answer vectors of an independent implementation (test-vectors/v2-stream): every
 * valid stream gives exactly its chunks and its ending, every invalid one fails the way it says
 * (a security error, or a stream cut short) after exactly the chunks before it, whether the body
 * arrives whole, a few bytes at a time, or one byte at a time.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AHEAD_QUIET_MS } from '../../../src/crypto/gcm/ahead.js';
import { importHkdfKey } from '../../../src/crypto/hkdf.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { heapBytes } from '../../../src/memory/owned-bytes.js';
import { decodeBase64 } from '../../../src/protocol/base64.js';
import { EventParser } from '../../../src/protocol/stream/events.js';
import { LineDecoder } from '../../../src/protocol/stream/lines.js';
import { StreamOpener } from '../../../src/protocol/stream/open-stream.js';
import { SecurityError, StreamTruncatedError } from '../../../src/errors.js';
import { VECTORS_DIR } from '../../helpers/vectors.js';

interface StreamVector {
  file: string;
  description: string;
  K: string;
  payload_id: string;
  body: string;
  expect: { chunks?: unknown[]; error?: unknown; failure?: 'security' | 'truncated'; chunks_before_failure?: number };
}

function read(kind: 'valid' | 'invalid'): StreamVector[] {
  const dir = `${VECTORS_DIR}v2-stream/${kind}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, ...(JSON.parse(readFileSync(dir + file, 'utf8')) as Omit<StreamVector, 'file'>) }));
}

/**
 * Opens `body` delivered in pieces of `size` bytes (0: whole): the chunks, and how it ended. With
 * `apart`, each event comes a few ms after the one before, as tokens do: each record then meets the
 * cipher made ahead for the record expected next (crypto/gcm/ahead.ts), asked for once the chunk
 * before was taken (StreamOpener.prepareNext).
 */
async function open(v: StreamVector, size: number, apart = false): Promise<{ chunks: unknown[]; end: unknown }> {
  const opener = new StreamOpener(importHkdfKey(decodeBase64(v.K) as Bytes), v.payload_id, heapBytes);
  const lines = new LineDecoder();
  const events = new EventParser();
  const bytes = new TextEncoder().encode(v.body);
  const chunks: unknown[] = [];
  // The body is read to its end, as the client reads it: nothing may follow the final record.
  let ending: unknown;
  const feed = async (piece: Uint8Array) => {
    for (const line of lines.push(piece)) {
      const event = events.push(line);
      if (!event) continue;
      if (apart) await new Promise((resolve) => setTimeout(resolve, AHEAD_QUIET_MS + 2));
      const step = await opener.event(event);
      // The chunk is with the caller: the next record's decipher is asked for, as the client does.
      if (step?.kind === 'chunk') (chunks.push(step.chunk), opener.prepareNext());
      if (step?.kind === 'error') ending = { error: step.error };
      if (step?.kind === 'end') ending = { error: null };
    }
  };
  try {
    const step = size === 0 ? bytes.length : size;
    for (let at = 0; at < bytes.length; at += step) await feed(bytes.subarray(at, at + step));
    lines.end();
    opener.end();
    return { chunks, end: ending };
  } catch (err) {
    return { chunks, end: err instanceof StreamTruncatedError ? 'truncated' : err instanceof SecurityError ? 'security' : `unexpected ${String(err)}` };
  }
}

const WAYS = [
  ['whole', 0, false],
  ['in pieces of 7 bytes', 7, false],
  ['one byte at a time', 1, false],
  ['whole, its events apart in time', 0, true],
] as const;

describe('streamed answers of an independent implementation', () => {
  it('has the vectors: 7 valid, 28 invalid', () => {
    expect(read('valid')).toHaveLength(7);
    expect(read('invalid')).toHaveLength(28);
  });

  describe.each(WAYS)('the body %s', (_way, size, apart) => {
    it.each(read('valid').map((v) => [v.file, v] as const))('%s gives exactly its chunks and its ending', async (_f, v) => {
      expect(await open(v, size, apart)).toEqual({ chunks: v.expect.chunks, end: { error: v.expect.error ?? null } });
    });

    it.each(read('invalid').map((v) => [v.file, v] as const))('%s fails as it says, after exactly the chunks before it', async (_f, v) => {
      const result = await open(v, size, apart);
      expect(result.end).toBe(v.expect.failure);
      expect(result.chunks).toHaveLength(v.expect.chunks_before_failure!);
    });
  });
});
