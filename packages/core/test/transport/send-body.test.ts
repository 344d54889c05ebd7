/**
 * A large request body goes to Node's own fetch as a stream of copies of its pieces, made in a ring
 * of buffers that later bodies reuse (transport/http.ts sendInit). The socket keeps the last piece it
 * was given until it has sent it; after an early answer (a 413, a 4xx before the body was read) that
 * can be long after fetch resolved. The test reads the stream as fetch does and holds every piece, as
 * a socket that has not sent them holds them.
 */
import { describe, expect, it } from 'vitest';
import { sendInit } from '../../src/transport/send-body.js';

const SIZE = 300_000;

/** Every piece fetch would take from the body, kept (as an unsent socket queue keeps them). */
async function takeAll(body: Uint8Array): Promise<{ sending: ReturnType<typeof sendInit>; pieces: Uint8Array[] }> {
  const sending = sendInit({ method: 'POST', headers: {}, body: body as Uint8Array<ArrayBuffer> }, true);
  const stream = sending.init.body as ReadableStream<Uint8Array>;
  expect(stream).toBeInstanceOf(ReadableStream); // the ring path: Node's own fetch, a large body
  const pieces: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) pieces.push(r.value);
  expect(pieces.reduce((n, p) => n + p.length, 0)).toBe(body.length);
  return { sending, pieces };
}

describe('the ring of pieces a large body is sent from', () => {
  it('after an early answer (not a 200 that read the body), is not reused: a piece still queued never becomes the next body', async () => {
    const a = await takeAll(new Uint8Array(SIZE).fill(0xaa));
    a.sending.revoke(); // the answer came
    a.sending.done(false); // a 4xx: the peer may never have read the last pieces
    const b = await takeAll(new Uint8Array(SIZE).fill(0xbb));
    b.sending.revoke();
    b.sending.done(false);
    for (const piece of a.pieces) expect(piece.every((byte) => byte === 0xaa)).toBe(true);
    expect(b.pieces.some((piece) => a.pieces.some((held) => held.buffer === piece.buffer))).toBe(false);
  });

  it('after a 200 (the router read every byte), is reused by the next body: a run of large requests touches no new pages', async () => {
    const a = await takeAll(new Uint8Array(SIZE).fill(0xaa));
    a.sending.revoke();
    a.sending.done(true);
    const b = await takeAll(new Uint8Array(SIZE).fill(0xbb));
    expect(b.pieces.some((piece) => piece.buffer === a.pieces[0]!.buffer)).toBe(true);
    b.sending.revoke();
    b.sending.done(true);
  });

  it('answered before fetch took every piece, is not reused, and what fetch still takes is zeros', async () => {
    const sending = sendInit({ method: 'POST', headers: {}, body: new Uint8Array(SIZE).fill(0xaa) }, true);
    const reader = (sending.init.body as ReadableStream<Uint8Array>).getReader();
    const first = (await reader.read()).value!;
    expect(first.every((byte) => byte === 0xaa)).toBe(true);
    sending.revoke();
    const rest: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value.slice());
    expect(rest.every((piece) => piece.every((byte) => byte === 0))).toBe(true);
    sending.done(true);
    const b = await takeAll(new Uint8Array(SIZE).fill(0xbb));
    expect(b.pieces.some((piece) => piece.buffer === first.buffer)).toBe(false);
  });
});
