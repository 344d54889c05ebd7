/**
 * Ciphers made ahead (crypto/gcm/ahead.ts): made after the turn, taken once, by exactly the call
 * they were made for, and never changing what a seal or open gives. node:crypto's createCipheriv and
 * createDecipheriv are counted (they still call through), to show which calls took one.
 */
import * as realCrypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AHEAD_QUIET_MS, makeAhead, takeAhead, type AheadCipher, type NextCall } from '../../../src/crypto/gcm/ahead.js';
import { gcmPieces as nodeGcm } from '../../../src/crypto/gcm/node.js';
import { importHkdfKey } from '../../../src/crypto/hkdf.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { heapBytes } from '../../../src/memory/owned-bytes.js';
import { deriveStreamKeys, expectNextRecord, openRecord, recordAad, recordNonce, sealRecord } from '../../../src/protocol/stream/records.js';
import { SecurityError } from '../../../src/errors.js';
import { StreamSealer } from '../../../src/protocol/stream/seal-stream.js';
import { StreamOpener } from '../../../src/protocol/stream/open-stream.js';
import { StreamAnswer } from '../../../src/client/stream-answer.js';
import { ResponseStream } from '../../../src/transport/response-stream.js';
import { Deadline } from '../../../src/transport/deadline.js';
import { V2_STREAM_KEY_INFO_PREFIX } from '../../../src/protocol/constants.js';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, createCipheriv: vi.fn(actual.createCipheriv), createDecipheriv: vi.fn(actual.createDecipheriv) };
});

const made = () => vi.mocked(realCrypto.createCipheriv).mock.calls.length + vi.mocked(realCrypto.createDecipheriv).mock.calls.length;
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** Longer than a stream must be quiet for its next record's cipher to be made. */
const quiet = () => new Promise((resolve) => setTimeout(resolve, AHEAD_QUIET_MS + 2));
const bytes = (n: number) => new Uint8Array(realCrypto.randomBytes(n)) as Bytes;
/** A record's plaintext without its padding: no zero byte (JSON has none). */
const text = (n: number) => bytes(n).map((b) => b | 1);
const aesKey = (usages: KeyUsage[]) => crypto.subtle.importKey('raw', bytes(32), 'AES-GCM', true, usages);

afterEach(() => vi.clearAllMocks());

describe('makeAhead and takeAhead', () => {
  const call = (): NextCall => ({ nonce: bytes(12), aad: bytes(40) });
  const fake = () => ({}) as AheadCipher;

  it('for a key\'s first call: nothing during the turn, then one cipher, taken once by exactly its call', async () => {
    const key = await aesKey(['encrypt']);
    const next = call();
    const make = vi.fn(fake);
    makeAhead('encrypt', key, () => next, make);
    expect(make).not.toHaveBeenCalled();
    expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBeUndefined();

    makeAhead('encrypt', key, () => next, make);
    await turn();
    expect(make).toHaveBeenCalledTimes(1);
    expect(make).toHaveBeenCalledWith('encrypt', key, next.nonce, next.aad);
    const cipher = make.mock.results[0]!.value as AheadCipher;
    expect(takeAhead('encrypt', key, next.nonce.slice() as Bytes, next.aad.slice() as Bytes)).toBe(cipher);
    expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBeUndefined();
  });

  type Call = [kind: 'encrypt' | 'decrypt', nonce: Bytes, aad: Bytes | undefined];
  it.each<[string, (n: NextCall) => Call]>([
    ['another nonce', (n) => ['encrypt', bytes(12), n.aad]],
    ['another AAD (the final flag, say)', (n) => ['encrypt', n.nonce, n.aad.subarray(1) as Bytes]],
    ['no AAD', (n) => ['encrypt', n.nonce, undefined]],
    ['the other kind', (n) => ['decrypt', n.nonce, n.aad]],
  ])('a call with %s gets none, and the cipher is dropped', async (_name, other) => {
    const key = await aesKey(['encrypt']);
    const next = call();
    makeAhead('encrypt', key, () => next, fake);
    await turn();
    const [kind, nonce, aad] = other(next);
    expect(takeAhead(kind, key, nonce, aad)).toBeUndefined();
    expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBeUndefined();
  });

  it('a cipher waits for its own key only', async () => {
    const [key, other] = [await aesKey(['encrypt']), await aesKey(['encrypt'])];
    const next = call();
    makeAhead('encrypt', key, () => next, fake);
    await turn();
    expect(takeAhead('encrypt', other, next.nonce, next.aad)).toBeUndefined();
    expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBeDefined();
  });

  it('records of one turn ask for one cipher, for the call after the last of them', async () => {
    const key = await aesKey(['decrypt']);
    const calls = [call(), call(), call()];
    const asked = calls.map((c) => vi.fn(() => c));
    const make = vi.fn(fake);
    for (const ask of asked) makeAhead('decrypt', key, ask, make);
    await turn();
    expect(asked.map((a) => a.mock.calls.length)).toEqual([0, 0, 1]);
    expect(make).toHaveBeenCalledTimes(1);
    expect(takeAhead('decrypt', key, calls[2]!.nonce, calls[2]!.aad)).toBeDefined();
  });

  it('for a later call, only once the stream has been quiet: a busy stream gets none made', async () => {
    // The stream's clock: held still, every record seems to have just come, whatever the real time.
    let clock = 1000;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      const key = await aesKey(['encrypt']);
      const make = vi.fn(fake);
      makeAhead('encrypt', key, call, make);
      await turn();
      expect(make).toHaveBeenCalledTimes(1);
      const next = call();
      makeAhead('encrypt', key, () => next, make);
      await new Promise((resolve) => setTimeout(resolve, 5 * AHEAD_QUIET_MS + 2));
      expect(make).toHaveBeenCalledTimes(1);
      clock += AHEAD_QUIET_MS;
      await quiet();
      expect(make).toHaveBeenCalledTimes(2);
      expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBe(make.mock.results[1]!.value);
    } finally {
      now.mockRestore();
    }
  });

  it('a failure while making leaves nothing and throws nowhere (the call makes its own cipher)', async () => {
    const key = await aesKey(['encrypt']);
    const next = call();
    const uncaught = vi.fn();
    process.on('uncaughtException', uncaught);
    try {
      makeAhead('encrypt', key, () => next, () => {
        throw new Error('no cipher');
      });
      await turn();
      makeAhead('encrypt', key, () => {
        throw new Error('no such record');
      }, fake);
      await quiet();
    } finally {
      process.off('uncaughtException', uncaught);
    }
    expect(uncaught).not.toHaveBeenCalled();
    expect(takeAhead('encrypt', key, next.nonce, next.aad)).toBeUndefined();
  });
});

describe('the records of a stream, in Node.js', () => {
  const payloadId = 'chatcmpl-ahead';
  /** A stream's keys both ways, and its record key as Web Crypto's, derived with node:crypto's HKDF: the reference. */
  async function keys() {
    const k = bytes(32);
    const kdfKey = await importHkdfKey(k);
    const salt = bytes(32);
    const raw = realCrypto.hkdfSync('sha256', k, salt, V2_STREAM_KEY_INFO_PREFIX + payloadId, 32);
    return {
      sealing: await deriveStreamKeys(kdfKey, salt, payloadId, 'encrypt'),
      opening: await deriveStreamKeys(kdfKey, salt, payloadId, 'decrypt'),
      webKey: await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt']),
    };
  }
  /** Record `i` as Web Crypto seals it, the reference. */
  async function reference(key: CryptoKey, nonceBase: Uint8Array, i: number, final: boolean, plaintext: Uint8Array): Promise<Uint8Array> {
    const params = { name: 'AES-GCM', iv: recordNonce(nonceBase, i), additionalData: recordAad(payloadId, i, final) };
    return new Uint8Array(await crypto.subtle.encrypt(params, key, plaintext as Bytes));
  }

  it('each record, tokens apart in time, takes the cipher made for it, and seals and opens exactly as without', async () => {
    const { sealing, opening, webKey } = await keys();
    await turn();
    const plaintexts = [text(128), text(256), text(128), new Uint8Array(128)];
    for (const [i, plaintext] of plaintexts.entries()) {
      const final = i === plaintexts.length - 1;
      let before = made();
      const sealed = await sealRecord(sealing, i, final, plaintext);
      // Made ahead, as a record that is not the final one: the final record makes its own.
      expect(made() - before).toBe(final ? 1 : 0);
      before = made();
      const opened = await openRecord(opening, i, final, sealed, heapBytes);
      expect(made() - before).toBe(final ? 1 : 0);
      // The record is on its way, and with the caller: the next one's ciphers are asked for, as the
      // sealer's and the opener's prepareNext do.
      if (!final) {
        before = made();
        expectNextRecord(sealing, 'encrypt', i + 1);
        expectNextRecord(opening, 'decrypt', i + 1);
        expect(made() - before).toBe(0); // nothing on the record's path: made once the stream is quiet
      }
      expect(Buffer.from(sealed)).toEqual(Buffer.from(await reference(webKey, sealing.nonceBase, i, final, plaintext)));
      expect(Buffer.from(opened.bytes)).toEqual(Buffer.from(plaintext.subarray(0, final ? 0 : plaintext.length)));
      opened.release();
      await quiet();
    }
    // Two a record, made ahead, and two more for the final one: the two made for a record 3 that
    // would not be the final one were never used.
    expect(made()).toBe(2 * plaintexts.length + 2);
  });

  it('records that come in one turn, after a cipher was made for the first of them, each get their own nonce and AAD', async () => {
    const { sealing, webKey } = await keys();
    await turn();
    const plaintexts = [text(128), text(128), text(128)];
    const sealed: Uint8Array[] = [];
    for (const [i, plaintext] of plaintexts.entries()) {
      sealed.push(await sealRecord(sealing, i, false, plaintext));
      expectNextRecord(sealing, 'encrypt', i + 1);
    }
    for (const [i, plaintext] of plaintexts.entries()) {
      expect(Buffer.from(sealed[i]!)).toEqual(Buffer.from(await reference(webKey, sealing.nonceBase, i, false, plaintext)));
    }
    const opener = await keys();
    await turn();
    const resealed: Uint8Array[] = [];
    for (const [i, plaintext] of plaintexts.entries()) resealed.push(await reference(opener.webKey, opener.sealing.nonceBase, i, false, plaintext));
    await turn();
    for (const [i, plaintext] of plaintexts.entries()) {
      const opened = await openRecord(opener.opening, i, false, resealed[i]!, heapBytes);
      expectNextRecord(opener.opening, 'decrypt', i + 1);
      expect(Buffer.from(opened.bytes)).toEqual(Buffer.from(plaintext));
      opened.release();
    }
  });

  it.each([
    ['forged as the final one', 0, true],
    ['out of order', 1, false],
  ] as const)('a record %s fails, though a decipher waits for its place, and the right one opens after it', async (_name, which, final) => {
    const { sealing, opening } = await keys();
    const records = [await sealRecord(sealing, 0, false, text(128)), await sealRecord(sealing, 1, false, text(128))];
    await turn();
    const before = made();
    const err = await openRecord(opening, 0, final, records[which]!, heapBytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecurityError);
    // The waiting decipher (record 0, not the final one) was not the call's: the call made its own.
    expect(made() - before).toBe(final ? 1 : 0);
    const opened = await openRecord(opening, 0, false, records[0]!, heapBytes);
    expect(opened.bytes).toHaveLength(128);
    opened.release();
  });

  it('a sealing under a key with no record expected, as a whole answer is sealed, gives the reference bytes', async () => {
    const key = await aesKey(['encrypt']);
    const nonce = bytes(12);
    const plaintext = bytes(1000);
    const out: Uint8Array[] = [];
    const tag = await nodeGcm.seal(key, nonce, undefined, plaintext, (p) => out.push(p.slice()));
    const expected = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, key, plaintext as Bytes));
    expect(Buffer.concat([...out, tag])).toEqual(Buffer.from(expected));
  });
});

describe('a stream written and read as the router and the client do', () => {
  it('the sealer asks once for a record\'s cipher: asked again before the record, the cipher made is kept', async () => {
    const sealer = await StreamSealer.start(await importHkdfKey(bytes(32)), 'chatcmpl-ahead');
    await turn(); // record 0's, made with the keys
    const before = made();
    sealer.prepareNext();
    sealer.prepareNext();
    await quiet();
    expect(made() - before).toBe(0);
    await sealer.record('{}');
    expect(made() - before).toBe(0); // record 0 took it
    sealer.prepareNext();
    await quiet();
    expect(made() - before).toBe(1);
    await sealer.record('{}');
    expect(made() - before).toBe(1);
  });

  it('each record takes the decipher made while the stream was quiet: asked for once the caller has the chunk before, not on its path', async () => {
    const k = bytes(32);
    const sealer = await StreamSealer.start(await importHkdfKey(k), 'chatcmpl-ahead');
    const words = ['one', 'two', 'three', 'four'];
    const events = [sealer.header()];
    for (const word of words) events.push(await sealer.record(JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: word }, finish_reason: null }] })));
    events.push(await sealer.final());
    // Each record comes a quiet gap after the caller took the chunk before, as tokens do; how many
    // deciphers were made when it was sent.
    const madeWhenSent: number[] = [];
    let taken = 0;
    let wake: (() => void) | undefined;
    const took = async (n: number) => {
      while (taken < n) await new Promise<void>((resolve) => (wake = resolve));
    };
    let next = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (next === events.length) return controller.close();
        // Event e >= 2 (record e - 1, or the final one) once the caller has the chunk of record e - 2.
        await took(next - 1);
        await quiet();
        madeWhenSent.push(vi.mocked(realCrypto.createDecipheriv).mock.calls.length);
        controller.enqueue(new TextEncoder().encode(events[next++]));
      },
    });
    const answer = new StreamAnswer(new ResponseStream(body, new Headers(), new Deadline(10_000, undefined, 'stream header')), new StreamOpener(importHkdfKey(k), 'chatcmpl-ahead', heapBytes));
    await answer.start();
    const contents: string[] = [];
    for await (const c of answer.chunks()) {
      contents.push(c.choices[0]!.delta.content!);
      taken++;
      wake?.();
    }
    expect(contents).toEqual(words);
    // Record i's decipher was made before record i was sent (the first with the keys): i + 1 by then.
    // The final record, whose AAD differs, makes its own.
    expect(madeWhenSent).toEqual([0, 1, 2, 3, 4, 5]);
    expect(vi.mocked(realCrypto.createDecipheriv).mock.calls.length).toBe(6);
  });
});
