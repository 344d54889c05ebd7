/**
 * The router's sealer, read back by the client's opener: records open in order to the chunks sealed,
 * whether each is awaited before the next is asked for or several are asked for at once (short
 * chunks share the sealer's buffer), and the bytes each chunk was encoded into are zero once its
 * record is sealed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { importHkdfKey } from '../../../src/crypto/hkdf.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { heapBytes } from '../../../src/memory/owned-bytes.js';
import { EventParser } from '../../../src/protocol/stream/events.js';
import { LineDecoder } from '../../../src/protocol/stream/lines.js';
import { recordNonce } from '../../../src/protocol/stream/records.js';
import { SecurityError } from '../../../src/errors.js';
import { StreamOpener } from '../../../src/protocol/stream/open-stream.js';
import { StreamSealer } from '../../../src/protocol/stream/seal-stream.js';

const PAYLOAD_ID = 'seal-test';
const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
// Short, non-ASCII, and longer than the sealer's own buffer takes (1024 UTF-16 units).
const CONTENTS = ['a', 'Grüße, 世界 🌍', 'x'.repeat(2000), 'é'.repeat(1000), 'last'];

async function keys() {
  const k = crypto.getRandomValues(new Uint8Array(32));
  return { sealer: await StreamSealer.start(await importHkdfKey(k as Bytes), PAYLOAD_ID), opener: new StreamOpener(await importHkdfKey(k as Bytes), PAYLOAD_ID, heapBytes) };
}

async function opened(opener: StreamOpener, events: string[]): Promise<string[]> {
  const lines = new LineDecoder();
  const parser = new EventParser();
  const contents: string[] = [];
  for (const line of lines.push(new TextEncoder().encode(events.join('')))) {
    const event = parser.push(line);
    const step = event && (await opener.event(event));
    if (step?.kind === 'chunk') contents.push(step.chunk.choices[0]!.delta.content!);
    if (step?.kind === 'end') contents.push('(end)');
  }
  return contents;
}

afterEach(() => vi.restoreAllMocks());

describe('StreamOpener', () => {
  it('refuses a record nested deeper than a whole answer may be, as a SecurityError, before parsing it', async () => {
    const { sealer, opener } = await keys();
    // 65 levels in `logprobs`, which the chunk's check does not look into; 64 pass.
    const nested = (depth: number) => ({ ...chunk('deep'), choices: [{ index: 0, delta: { content: 'deep' }, finish_reason: null, logprobs: JSON.parse('['.repeat(depth - 3) + ']'.repeat(depth - 3)) }] });
    const parse = vi.spyOn(JSON, 'parse');
    const events = [sealer.header(), await sealer.record(JSON.stringify(nested(64))), await sealer.record(JSON.stringify(nested(65)))];
    parse.mockClear();
    await expect(opened(opener, events)).rejects.toThrow(/a streamed record is nested deeper than 64/);
    // The header's JSON and the first record's: the deep one is refused before it is parsed.
    expect(parse).toHaveBeenCalledTimes(2);
  });

  it("refuses a final record's error nested deeper than 64 the same way; one of 64 is the error it carries", async () => {
    // The error's object holds 2 levels; an unknown field holds the rest.
    const nested = (depth: number) => ({ message: 'm', type: 't', code: null, extra: JSON.parse('['.repeat(depth - 2) + ']'.repeat(depth - 2)) as unknown }) as never;
    for (const [depth, outcome] of [
      [64, 'error'],
      [65, 'refused'],
    ] as const) {
      const { sealer, opener } = await keys();
      const events = [sealer.header(), await sealer.final(nested(depth))];
      const parse = vi.spyOn(JSON, 'parse');
      const result = await (async () => {
        const lines = new LineDecoder();
        const parser = new EventParser();
        let last;
        for (const line of lines.push(new TextEncoder().encode(events.join('')))) {
          const event = parser.push(line);
          if (event) last = await opener.event(event);
        }
        return last?.kind;
      })().catch((e: unknown) => (e instanceof Error && /the sealed error is not/.test(e.message) ? 'refused' : e));
      expect(result, `depth ${depth}`).toBe(outcome);
      // Refused before the error's JSON is parsed: the header's alone.
      if (outcome === 'refused') expect(parse).toHaveBeenCalledTimes(1);
      parse.mockRestore();
    }
  });
});

describe('record nonces', () => {
  it('count up to 2^32 records; the next would repeat record 0\'s nonce, and is refused', () => {
    const base = new Uint8Array(12).fill(0x5a);
    expect([...recordNonce(base, 2 ** 32 - 1).slice(8)]).toEqual([0xa5, 0xa5, 0xa5, 0xa5]);
    expect([...recordNonce(base, 1).slice(8)]).toEqual([0x5a, 0x5a, 0x5a, 0x5b]);
    for (const index of [2 ** 32, 2 ** 32 + 1, -1, 1.5, Number.NaN]) expect(() => recordNonce(base, index)).toThrow(SecurityError);
  });
});

describe('a final record from another router', () => {
  /** What the last event of a stream ending in `error` opens as. */
  async function lastStep(error: unknown) {
    const { sealer, opener } = await keys();
    const events = [sealer.header(), await sealer.final(error as never)];
    const parser = new EventParser();
    let last;
    for (const line of new LineDecoder().push(new TextEncoder().encode(events.join('')))) {
      const event = parser.push(line);
      if (event) last = await opener.event(event);
    }
    return last;
  }

  it("an error with this project's param and status of another shape: the error still, without them", async () => {
    for (const extra of [{ param: ['messages'], status: '502' }, { param: 7, status: 200 }, { status: 600.5 }]) {
      expect(await lastStep({ message: 'upstream connection lost', type: 'upstream_error', code: 502, ...extra })).toEqual({
        kind: 'error',
        error: { message: 'upstream connection lost', type: 'upstream_error', code: 502 },
      });
    }
    expect(await lastStep({ message: 'm', type: 't', code: null, param: 'messages', status: 429 })).toEqual({ kind: 'error', error: { message: 'm', type: 't', code: null, param: 'messages', status: 429 } });
  });

  it("an error without the spec's own fields, or of their wrong type, is refused", async () => {
    for (const error of [{ type: 't', code: null }, { message: 1, type: 't', code: null }, { message: 'm', type: 't', code: [] }, { message: 'm', type: 't', code: true }]) {
      await expect(lastStep(error)).rejects.toThrow(/the sealed error is not/);
    }
  });
});

describe('StreamSealer', () => {
  it('records awaited one by one open in order to their chunks', async () => {
    const { sealer, opener } = await keys();
    const events = [sealer.header()];
    for (const content of CONTENTS) events.push(await sealer.record(JSON.stringify(chunk(content))));
    events.push(await sealer.final());
    expect(await opened(opener, events)).toEqual([...CONTENTS, '(end)']);
  });

  it('records asked for at once, before any is sealed, open in order to their chunks', async () => {
    const { sealer, opener } = await keys();
    const records = await Promise.all(CONTENTS.map((content) => sealer.record(JSON.stringify(chunk(content)))));
    expect(await opened(opener, [sealer.header(), ...records, await sealer.final()])).toEqual([...CONTENTS, '(end)']);
  });

  it('the bytes each chunk was encoded into are all zero once its record is sealed', async () => {
    const { sealer } = await keys();
    const targets: Uint8Array[] = [];
    const encodeInto = TextEncoder.prototype.encodeInto;
    vi.spyOn(TextEncoder.prototype, 'encodeInto').mockImplementation(function (this: TextEncoder, text: string, into: Uint8Array) {
      targets.push(into);
      return encodeInto.call(this, text, into);
    });
    for (const content of CONTENTS) {
      await sealer.record(JSON.stringify(chunk(content)));
      const into = targets.at(-1)!;
      expect(into.some((byte) => byte !== 0)).toBe(false);
    }
    expect(targets).toHaveLength(CONTENTS.length);
    // The short ones shared the sealer's buffer; the long ones had their own.
    expect(new Set(targets).size).toBe(3);
  });
});
