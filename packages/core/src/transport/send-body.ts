/**
 * A request body as it goes to fetch, so that no later use of its buffer can ever reach the wire:
 * the buffer goes back for reuse (with another request's plaintext in it, perhaps) as soon as fetch
 * has answered, and fetch may still be sending then (a router, or a proxy, that answers before it has
 * read the whole body). And no redirect may take it anywhere else.
 */
import { LARGE_BODY_BYTES } from '../sizes.js';

/** Node's own fetch (undici) as found at load time, when this is Node. */
const nodeFetch = (globalThis as { process?: { versions?: { undici?: string } } }).process?.versions?.undici ? globalThis.fetch : undefined;

/** A request as it goes to fetch, and how to be done with its body's buffer. */
export interface Sending {
  init: RequestInit;
  /**
   * From now on fetch reads nothing more from the body's buffer, which can then go back for reuse
   * (with another request's plaintext in it, perhaps). Call it once fetch has answered or failed.
   */
  revoke(): void;
  /**
   * The exchange is over. `consumed`: the peer read the whole body before it answered (a router's
   * 200), so the connection has sent every byte fetch was given. Otherwise (an early response, a
   * failure) the socket may still hold a piece it has not sent.
   */
  done(consumed: boolean): void;
}

/**
 * The request as it goes to fetch. A redirect must never take it (or the router key fetch) anywhere
 * else, least of all from https to http: 'manual' hands a redirect to us to refuse. In Node.js a large
 * body goes with 'error' instead: with 'manual', Node's fetch keeps a second copy of the whole body
 * (it tees it, ready to re-send on a redirect); 'error' with no window re-sends nothing, so keeps
 * none. Elsewhere 'manual' stays: workerd refuses 'error' (and a body is no stream there to tee).
 *
 * Whatever fetch is given must stay valid after {@link Sending.revoke}, when the
 * body's buffer goes back to be reused: a router (or a proxy) may answer before it has read the whole
 * body, and fetch then goes on sending what it holds. So fetch never gets a view of that buffer:
 * - the runtime's own fetch takes a byte body whole when called, as the Fetch standard says (Node's,
 *   Deno's, Bun's and browsers' do); in Node it copies all of it first, so it gets a stream instead
 *   whose pieces are copied one at a time as it sends them ({@link copiedPieces}: no whole-size
 *   copy), and after `revoke` are zeros;
 * - a fetch option (or a global fetch replaced since load) may keep a view and read it late
 *   (node-fetch does, until the socket takes it): it gets a copy of its own, of any body.
 * Exported for the bench (stages), which sends as the client does. @internal
 */
/**
 * Whether a request goes through the runtime's own fetch as it was at load: no fetch option given
 * (`ownFetch`), and the global one not replaced since (in Node.js). Its body heeds the request's
 * signal, and it takes a body's bytes as it sends them.
 */
export function isRuntimeFetch(ownFetch: boolean): boolean {
  return ownFetch && (!nodeFetch || globalThis.fetch === nodeFetch);
}

export function sendInit(init: RequestInit, ownFetch: boolean): Sending {
  const body = init.body;
  if (!(body instanceof Uint8Array)) return { init: { ...init, redirect: 'manual' }, revoke: () => {}, done: () => {} };
  const large = body.length >= LARGE_BODY_BYTES;
  const sent: RequestInit = large && nodeFetch ? { ...init, redirect: 'error', window: null } : { ...init, redirect: 'manual' };
  const runtimeFetch = isRuntimeFetch(ownFetch);
  // A small body's buffer is reused too (for ciphertext only): a late reader would send another request's.
  if (!runtimeFetch) return { init: { ...sent, body: body.slice() }, revoke: () => {}, done: () => {} };
  if (!large || !nodeFetch) return { init: sent, revoke: () => {}, done: () => {} };
  const { stream, revoke, done } = copiedPieces(body);
  const headers = { ...(init.headers as Record<string, string>), 'Content-Length': String(body.length) };
  return { init: { ...sent, body: stream, headers, duplex: 'half' } as RequestInit, revoke, done };
}

/**
 * `body` as a stream of copies of its pieces, each made as fetch asks for it, into a ring of
 * {@link RING_PIECES} buffers reused in turn: no whole-size copy, and no garbage to collect. The
 * ring holds nothing but this body's own bytes (ciphertext), whoever reads it late. A slot is written
 * again {@link RING_PIECES} pieces later; Node's fetch asks for a piece only once the socket has
 * taken the one before (a ring of one passes the slow-link test), so none is overwritten before it
 * is sent; if one ever were, the router would find the package not authentic and refuse it. After
 * `revoke` the rest are zeros: the length stays as announced, and the body's buffer is not read again.
 *
 * The ring carries another body only once this connection is finished with it: every piece taken
 * before the answer came, and the peer's answer saying it read them all (`done(true)`). The socket
 * keeps the last piece it was given until it has sent it, which after an early response (a 413, a
 * 4xx before the body was read) may be long after fetch has resolved: such a ring is left to the
 * collector, or that piece would go out as bytes of the next body.
 */
function copiedPieces(body: Uint8Array): { stream: ReadableStream<Uint8Array>; revoke(): void; done(consumed: boolean): void } {
  let source: Uint8Array | undefined = body;
  const length = body.length;
  const ring = idleRings.pop() ?? new Uint8Array(RING_PIECES * STREAM_PIECE_BYTES);
  let at = 0;
  let slot = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const size = Math.min(STREAM_PIECE_BYTES, length - at);
        const piece = ring.subarray(slot * STREAM_PIECE_BYTES, slot * STREAM_PIECE_BYTES + size);
        slot = (slot + 1) % RING_PIECES;
        if (source) piece.set(source.subarray(at, at + size));
        else piece.fill(0);
        controller.enqueue(piece);
        at += size;
        if (at === length) controller.close();
      },
    },
    // Nothing read ahead: a piece is copied only when fetch wants it.
    { highWaterMark: 0 },
  );
  let takenBeforeAnswer = false;
  const revoke = () => {
    if (!source) return;
    source = undefined;
    takenBeforeAnswer = at === length;
  };
  let finished = false;
  const done = (consumed: boolean) => {
    if (finished) return;
    finished = true;
    if (consumed && takenBeforeAnswer && idleRings.length < MAX_IDLE_RINGS) idleRings.push(ring);
  };
  return { stream, revoke, done };
}

/** Rings of {@link copiedPieces} no body uses now, for the next ones (a run of large requests touches no new pages). */
const idleRings: Uint8Array[] = [];
const MAX_IDLE_RINGS = 4;

const STREAM_PIECE_BYTES = 64 * 1024;
/** Pieces in a ring of copiedPieces (256 KiB), where fetch holds one at a time. */
const RING_PIECES = 4;

