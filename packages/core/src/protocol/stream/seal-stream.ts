/**
 * A streamed answer sealed event by event, on the router (docs/protocol.md, "Streamed answers
 * (v2)"): a fresh salt and the header event, then one padded record per chunk, then the final
 * record, empty or carrying an error. Each call gives the event's text, ready to be written and
 * flushed.
 */
import { MAX_STREAM_RECORD_BYTES, PROTOCOL_V2_VERSION, STREAM_EVENTS, STREAM_SALT_BYTES, V2_STREAM_ALGORITHM } from '../constants.js';
import { encodeBase64 } from '../base64.js';
import { sealedErrorBytes, type SealedError } from '../sealed-error.js';
import type { HkdfKey } from '../../crypto/hkdf.js';
import { formatEvent } from './events.js';
import { deriveStreamKeys, expectNextRecord, paddedLength, sealRecord, type StreamKeys } from './records.js';

const encoder = new TextEncoder();

/**
 * A chunk of up to this many UTF-16 units (most are a few hundred) is encoded into the sealer's own
 * buffer, zeroed after each record, not into a new one: one allocation less for each of a stream's
 * records, tens of thousands a second on a router (docs/performance.md).
 */
const REUSED_CHARS = 1024;

/** Seals one streamed answer, event by event, on the router: made by {@link StreamSealer.start}. */
export class StreamSealer {
  #next = 0;
  #ended = false;
  /** Zeros when not in use; taken (undefined) while a record is sealed from it. */
  #buffer: Uint8Array | undefined = new Uint8Array(paddedLength(REUSED_CHARS * 3));

  private constructor(
    private readonly keys: StreamKeys,
    private readonly salt: Uint8Array,
  ) {}

  /** A sealer for the stream answering the request sealed with `K` (`kdfKey`) for `payloadId`: a fresh salt, fresh keys. */
  static async start(kdfKey: HkdfKey, payloadId: string): Promise<StreamSealer> {
    const salt = globalThis.crypto.getRandomValues(new Uint8Array(STREAM_SALT_BYTES));
    return new StreamSealer(await deriveStreamKeys(kdfKey, salt, payloadId, 'encrypt'), salt);
  }

  /** The header event: written first, once the model's answer has begun (the reference router: for an upstream, once its response headers have come). */
  header(): string {
    return formatEvent(JSON.stringify({ version: PROTOCOL_V2_VERSION, algorithm: V2_STREAM_ALGORITHM, salt: encodeBase64(this.salt) }), STREAM_EVENTS.header);
  }

  /** The next record event: `json` (a chunk's JSON text) padded to a multiple of 128 bytes and sealed. */
  async record(json: string): Promise<string> {
    // Three bytes a UTF-16 unit at most: room for the UTF-8, with its padding.
    const reused = json.length <= REUSED_CHARS ? this.#buffer : undefined;
    const plaintext = reused ?? new Uint8Array(paddedLength(json.length * 3));
    if (reused) this.#buffer = undefined;
    try {
      const { written } = encoder.encodeInto(json, plaintext);
      if (written > MAX_STREAM_RECORD_BYTES) {
        plaintext.fill(0, 0, written);
        throw new RangeError(`a chunk over ${MAX_STREAM_RECORD_BYTES} bytes cannot be a record: the client would refuse it`);
      }
      return formatEvent(await this.#seal(plaintext, written, false));
    } finally {
      // Zeroed by now (#seal): the next record may take it.
      if (reused) this.#buffer = reused;
    }
  }

  /** The final record event: empty for a normal end, or carrying `error`. Nothing may follow it. */
  async final(error?: SealedError): Promise<string> {
    const text = error === undefined ? new Uint8Array(0) : sealedErrorBytes(error);
    const plaintext = new Uint8Array(paddedLength(text.length));
    plaintext.set(text);
    text.fill(0);
    return formatEvent(await this.#seal(plaintext, text.length, true), STREAM_EVENTS.final);
  }

  /** Whether the final record was made. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Has the next record's cipher made while the stream is quiet (in Node.js), for that record to
   * take: call it once the records made so far are on their way (the router: once a turn's writes
   * have left), so that arming it is not on their path. Without it, each record makes its own.
   */
  prepareNext(): void {
    if (!this.#ended) expectNextRecord(this.keys, 'encrypt', this.#next);
  }

  /** Seals `plaintext` (its first `length` bytes, zeros after them: the padding), then zeroes those bytes. */
  async #seal(plaintext: Uint8Array, length: number, final: boolean): Promise<string> {
    try {
      if (this.#ended) throw new Error('the stream has ended: nothing may follow its final record');
      if (final) this.#ended = true;
      return encodeBase64(await sealRecord(this.keys, this.#next++, final, plaintext.subarray(0, paddedLength(length))));
    } finally {
      plaintext.fill(0, 0, length);
    }
  }
}
