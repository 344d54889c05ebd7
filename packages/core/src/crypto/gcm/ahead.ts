/**
 * Ciphers made ahead, for node.ts: a stream's next record has a nonce and AAD known in advance, so
 * its cipher can be made while the stream is quiet, and the record takes it when it comes. In a
 * process back from idle, as every token of a stream finds the router and the client, making a
 * node:crypto cipher is half of a small record's AES-GCM time (docs/performance.md, "Streamed
 * answers: `pnpm bench stream`"); made ahead, it is off the path between the model's token and the
 * caller.
 *
 * One cipher waits per key, and is taken once, by the seal or open with exactly the nonce and AAD it
 * was made for; any other call drops it and makes its own. A cipher that is never taken has sealed
 * nothing: a GCM nonce is spent by what is sealed under it, not by a cipher's setup.
 */
import { setImmediate, setTimeout } from 'node:timers';
import type { CipherGCM, DecipherGCM } from 'node:crypto';
import type { Bytes } from '../subtle.js';
import type { AesKey } from './types.js';

/** A cipher or decipher, its AAD already given. */
export type AheadCipher = CipherGCM | DecipherGCM;

/** The nonce and AAD of the call expected next. */
export interface NextCall {
  readonly nonce: Bytes;
  readonly aad: Bytes;
}

/** Makes a cipher of `kind` for `key` with `nonce`, its AAD given; undefined where node:crypto cannot. */
export type MakeCipher = (kind: 'encrypt' | 'decrypt', key: AesKey, nonce: Bytes, aad: Bytes) => AheadCipher | undefined;

/**
 * How long a stream must have been quiet before its next record's cipher is made. The records of a
 * busy stream find node:crypto warm and gain nothing; a cipher made for one of them would wait
 * through collections of V8's young generation, and the survivors grew a router's heap by 16 MiB
 * more on a 100,000-record stream (two runs in five, docs/performance.md).
 */
export const AHEAD_QUIET_MS = 1;

interface Slot {
  kind: 'encrypt' | 'decrypt';
  /** The call expected next: asked for only when the cipher is made, off the record's path. */
  next: () => NextCall;
  /** When it was asked for (performance.now()). */
  asked: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  made: (NextCall & { readonly cipher: AheadCipher }) | undefined;
}

const slots = new WeakMap<AesKey, Slot>();

/**
 * Makes the cipher for the next call under `key` ahead: for a stream's first record (the first ask
 * for the key) once this turn's work is done, as the record comes only once the model has begun;
 * for the others once the stream has been quiet for {@link AHEAD_QUIET_MS}. Records that come
 * together ask for one cipher, for the call after the last of them.
 */
export function makeAhead(kind: 'encrypt' | 'decrypt', key: AesKey, next: () => NextCall, make: MakeCipher): void {
  let slot = slots.get(key);
  const first = !slot;
  if (!slot) slots.set(key, (slot = { kind, next, asked: 0, timer: undefined, made: undefined }));
  slot.kind = kind;
  slot.next = next;
  slot.asked = performance.now();
  slot.made = undefined;
  if (first) setImmediate(() => makeFor(slot, key, make));
  else if (!slot.timer) arm(slot, key, make, AHEAD_QUIET_MS);
}

/** One timer per stream, armed again for what is left of the quiet instead of once a record. */
function arm(slot: Slot, key: AesKey, make: MakeCipher, ms: number): void {
  slot.timer = setTimeout(() => {
    const left = slot.asked + AHEAD_QUIET_MS - performance.now();
    if (left > 0) return arm(slot, key, make, left);
    slot.timer = undefined;
    makeFor(slot, key, make);
  }, ms);
  // An idle process may exit: a cipher that nothing waits for is not worth keeping it alive.
  slot.timer.unref?.();
}

function makeFor(slot: Slot, key: AesKey, make: MakeCipher): void {
  if (slot.made) return;
  try {
    const call = slot.next();
    const cipher = make(slot.kind, key, call.nonce, call.aad);
    if (cipher) slot.made = { ...call, cipher };
  } catch {
    // Nothing made: the call makes its own cipher, and meets whatever is wrong itself.
  }
}

/** The cipher made ahead for exactly this call, taken (it is never handed out twice); else undefined. */
export function takeAhead(kind: 'encrypt' | 'decrypt', key: AesKey, nonce: Bytes, aad: Bytes | undefined): AheadCipher | undefined {
  const slot = slots.get(key);
  const made = slot?.made;
  if (!slot || !made) return undefined;
  slot.made = undefined;
  return slot.kind === kind && aad !== undefined && same(made.nonce, nonce) && same(made.aad, aad) ? made.cipher : undefined;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
