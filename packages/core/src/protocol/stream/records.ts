/**
 * The records of a streamed v2 answer (docs/protocol.md, "Streamed answers (v2)"): their keys,
 * derived with HKDF from the request's `K` and the header's salt; their nonces, which count; their
 * associated data, which binds each record's number and whether it is the final one; and their
 * padding. Both sides are here: the router seals, the client opens. No I/O.
 */
import {
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  MAX_STREAM_RECORD_BYTES,
  MAX_STREAM_RECORDS,
  STREAM_PADDING_BYTES,
  STREAM_SALT_BYTES,
  V2_STREAM_KEY_INFO_PREFIX,
  V2_STREAM_NONCE_INFO_PREFIX,
  V2_STREAM_RECORD_AAD_PREFIX,
} from '../constants.js';
import { deriveAesKey, deriveBytes, type HkdfKey } from '../../crypto/hkdf.js';
import { gcmPieces, loadedGcm, sealWhole } from '../../crypto/gcm/select.js';
import type { AesKey, GcmPieces } from '../../crypto/gcm/types.js';
import { decryptionFailed } from '../../crypto/rsa.js';
import type { Bytes } from '../../crypto/subtle.js';
import { head, type ByteSource, type OwnedBytes } from '../../memory/owned-bytes.js';
import { SecurityError } from '../../errors.js';

const encoder = new TextEncoder();

/** One stream's keys: the AES-256-GCM key of its records and the base their nonces count from. */
export interface StreamKeys {
  /** The AES-256-GCM key of every record. */
  readonly key: AesKey;
  /** The 12 bytes each record's number is XORed into to make its nonce. */
  readonly nonceBase: Uint8Array;
  /** The request's payload id, part of every record's associated data. */
  readonly payloadId: string;
}

/**
 * The keys of the stream answering the request sealed with `K` for `payloadId` (`kdfKey`: `K`
 * imported as HKDF key material), under the header's `salt`: the router's to seal (`encrypt`), the
 * client's to open (`decrypt`).
 */
export async function deriveStreamKeys(kdfKey: HkdfKey, salt: Uint8Array, payloadId: string, usage: 'encrypt' | 'decrypt'): Promise<StreamKeys> {
  if (salt.length !== STREAM_SALT_BYTES) throw new SecurityError(`malformed stream: the salt must be ${STREAM_SALT_BYTES} bytes`);
  const [key, nonceBase] = await Promise.all([
    deriveAesKey(kdfKey, encoder.encode(V2_STREAM_KEY_INFO_PREFIX + payloadId), usage, salt as Bytes),
    deriveBytes(kdfKey, encoder.encode(V2_STREAM_NONCE_INFO_PREFIX + payloadId), salt as Bytes, GCM_NONCE_BYTES),
  ]);
  const keys = { key, nonceBase, payloadId };
  expectRecord(await gcmPieces(), keys, usage, 0);
  return keys;
}

/** A record's nonce and AAD. */
interface RecordCall {
  readonly nonce: Bytes;
  readonly aad: Bytes;
}

/** The record whose cipher each stream asked for last (expectRecord). */
const asked = new WeakMap<StreamKeys, number>();

/** The record each stream expects next, its nonce and AAD made with its cipher (expectRecord): that record makes neither again. */
const expected = new WeakMap<StreamKeys, RecordCall & { readonly index: number }>();

/**
 * Has the cipher of record `index`, as a record that is not the final one (most are not), made while
 * the stream waits for it, for the record to take when it comes (GcmPieces.ahead: node:crypto's
 * cipher setup, off the path between a token and the caller).
 */
function expectRecord(gcm: GcmPieces, keys: StreamKeys, kind: 'encrypt' | 'decrypt', index: number): void {
  // Asked again for the same record, GcmPieces.ahead would drop a cipher already made.
  if (!gcm.ahead || index >= MAX_STREAM_RECORDS || asked.get(keys) === index) return;
  asked.set(keys, index);
  gcm.ahead(kind, keys.key, () => {
    const call = { index, nonce: recordNonce(keys.nonceBase, index), aad: recordAad(keys.payloadId, index, false) };
    expected.set(keys, call);
    return call;
  });
}

/**
 * Has the cipher of record `index` made ahead (see expectRecord) once `#gcm` is loaded. The sealer
 * and the opener call it once the record before is on its way (written, or handed to the caller):
 * arming it costs a timer, 20-25 µs in a process back from idle, which is then off the token's path.
 */
export function expectNextRecord(keys: StreamKeys, kind: 'encrypt' | 'decrypt', index: number): void {
  const gcm = loadedGcm();
  if (gcm) expectRecord(gcm, keys, kind, index);
}

/** Record `index`'s nonce and AAD: those made ahead when it is the record expected, else made now. */
function recordCall(keys: StreamKeys, index: number, final: boolean): RecordCall {
  const call = expected.get(keys);
  if (call && call.index === index && !final) return call;
  return { nonce: recordNonce(keys.nonceBase, index), aad: recordAad(keys.payloadId, index, final) };
}

/** `nonce_i` = nonce_base XOR (i as a 12-byte big-endian integer). */
export function recordNonce(nonceBase: Uint8Array, index: number): Bytes {
  if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_STREAM_RECORDS) throw new SecurityError('malformed stream: too many records');
  const nonce = new Uint8Array(nonceBase);
  // 2^32 records at most: the counter touches the last four bytes only.
  const view = new DataView(nonce.buffer);
  view.setUint32(GCM_NONCE_BYTES - 4, view.getUint32(GCM_NONCE_BYTES - 4) ^ index);
  return nonce as Bytes;
}

/** `aad_i` = UTF-8("nomyo/2 stream record\n" + payload_id + "\n" + decimal(i) + "\n" + ("final" | "more")). */
export function recordAad(payloadId: string, index: number, final: boolean): Bytes {
  return encoder.encode(`${V2_STREAM_RECORD_AAD_PREFIX}${payloadId}\n${index}\n${final ? 'final' : 'more'}`);
}

/** How many bytes `length` plaintext bytes take padded: the next multiple of STREAM_PADDING_BYTES (at least one block). */
export function paddedLength(length: number): number {
  return Math.max(1, Math.ceil(length / STREAM_PADDING_BYTES)) * STREAM_PADDING_BYTES;
}

/**
 * Seals record `index` of a stream: `plaintext` (the caller pads it: zeros after the JSON) as
 * ciphertext||tag, in a buffer of its own. The next record's cipher is made ahead only once the
 * sealer asks for it (`StreamSealer.prepareNext`).
 */
export async function sealRecord(keys: StreamKeys, index: number, final: boolean, plaintext: Uint8Array): Promise<Uint8Array> {
  const { nonce, aad } = recordCall(keys, index, final);
  return sealWhole(keys.key, nonce, aad, plaintext);
}

/**
 * Opens record `index` (ciphertext||tag) into bytes from `into`, padding removed: the JSON of a
 * chunk, or of the final record's error, or nothing. Anything that does not open with this record's
 * number, flag, stream and payload id is the one generic SecurityError; a plaintext over 1 MiB
 * without its padding, or with a non-zero byte after a zero one, is refused too.
 */
export async function openRecord(keys: StreamKeys, index: number, final: boolean, sealed: Uint8Array, into: ByteSource): Promise<OwnedBytes> {
  if (sealed.length < GCM_TAG_BYTES) throw decryptionFailed();
  const length = sealed.length - GCM_TAG_BYTES;
  const gcm = loadedGcm() ?? (await gcmPieces());
  const target = into.take(length);
  try {
    const { nonce, aad } = recordCall(keys, index, final);
    const tag = sealed.subarray(length) as Bytes;
    const plaintext = await gcm.open(keys.key, nonce, aad, tag, length, (sink) => sink(sealed.subarray(0, length)), target.bytes);
    // Web Crypto's own buffer where the cipher does not stream: into ours, then zeroed.
    if (plaintext !== target.bytes) {
      target.bytes.set(plaintext);
      plaintext.fill(0);
    }
    return head(target, unpaddedLength(target.bytes.subarray(0, length)));
  } catch (err) {
    target.release();
    throw err;
  }
}

/** The length without the trailing zeros; refuses a non-zero byte after a zero one, and more than 1 MiB. */
function unpaddedLength(plaintext: Uint8Array): number {
  let end = plaintext.length;
  while (end > 0 && plaintext[end - 1] === 0) end--;
  // JSON never holds a raw 0x00: one before `end` means data after padding.
  if (plaintext.subarray(0, end).includes(0)) throw new SecurityError('malformed stream: data after padding in a record');
  if (end > MAX_STREAM_RECORD_BYTES) throw new SecurityError(`malformed stream: a record over ${MAX_STREAM_RECORD_BYTES} bytes`);
  return end;
}
