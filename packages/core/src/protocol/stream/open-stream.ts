/**
 * A streamed answer opened event by event, on the client (docs/protocol.md, "Streamed answers
 * (v2)"): the header first, exactly once; then records numbered from 0, each opened with its number
 * and its flag, and checked as a chat.completion.chunk; then the final record, after which nothing
 * may come. Anything else is a SecurityError, and a stream that ends before its final record is cut
 * short (StreamTruncatedError). The layer above events: bytes → lines → events → records → chunks.
 */
import { MAX_ANSWER_DEPTH, MAX_STREAM_HEADER_CHARS, PROTOCOL_V2_VERSION, STREAM_EVENTS, V2_STREAM_ALGORITHM } from '../constants.js';
import { jsonNestingExceeds } from '../json-depth.js';
import { decodeBase64 } from '../base64.js';
import { isObject } from '../package.js';
import { parseSealedError, type SealedError } from '../sealed-error.js';
import type { ByteSource } from '../../memory/owned-bytes.js';
import type { HkdfKey } from '../../crypto/hkdf.js';
import { SecurityError, StreamTruncatedError } from '../../errors.js';
import { checkChatCompletionChunk, type ChatCompletionChunk } from './chunk.js';
import type { StreamEvent } from './events.js';
import { deriveStreamKeys, expectNextRecord, openRecord, type StreamKeys } from './records.js';

/** What one event brought: a chunk, the normal end, or the error the final record carries. */
export type StreamStep =
  | {
      /** A record before the final one. */
      kind: 'chunk';
      /** Its chunk, checked. */
      chunk: ChatCompletionChunk;
    }
  | {
      /** The final record, empty: a normal end. */
      kind: 'end';
    }
  | {
      /** The final record, carrying an error. */
      kind: 'error';
      /** The error the router sealed into it. */
      error: SealedError;
    };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function refused(what: string): SecurityError {
  return new SecurityError(`malformed stream: ${what}`);
}

/** Opens one streamed answer, event by event, on the client: see the module's comment for the rules. */
export class StreamOpener {
  #keys: StreamKeys | undefined;
  #next = 0;
  #ended = false;

  /**
   * An opener for the answer to one request.
   * @param kdfKey the request's `K` as HKDF key material (requestSealingV2's)
   * @param payloadId the request's payload id
   * @param plaintexts where each record's plaintext goes (secure memory), zeroed once parsed
   */
  constructor(
    private readonly kdfKey: HkdfKey | Promise<HkdfKey>,
    /** The request's payload id, which the stream is bound to. */
    readonly payloadId: string,
    private readonly plaintexts: ByteSource,
  ) {}

  /** Whether the header has arrived: from then on a streamed answer is never retried. */
  get started(): boolean {
    return this.#keys !== undefined;
  }

  /** Whether the final record has come: the answer is whole, and nothing may follow it. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Takes the next event: undefined for the header, else what its record brought. */
  async event(event: StreamEvent): Promise<StreamStep | undefined> {
    if (this.#ended) throw refused('an event after the final record');
    if (event.dataLines !== 1) throw refused('an event must carry exactly one data line');
    if (event.name === STREAM_EVENTS.header) {
      if (this.#keys) throw refused('a second header');
      this.#keys = await this.#header(event.data);
      return undefined;
    }
    const final = event.name === STREAM_EVENTS.final;
    if (!final && event.name !== undefined && event.name !== STREAM_EVENTS.record) throw refused('an event of an unknown name');
    if (!this.#keys) throw refused('a record before the header');
    if (event.data === '[DONE]') throw refused('a plain [DONE] where the sealed final record belongs');
    const index = this.#next++;
    let sealed: Uint8Array;
    try {
      sealed = decodeBase64(event.data);
    } catch {
      throw refused('a record that is not base64');
    }
    const plaintext = await openRecord(this.#keys, index, final, sealed, this.plaintexts);
    try {
      if (final) {
        this.#ended = true;
        return plaintext.bytes.length === 0 ? { kind: 'end' } : { kind: 'error', error: parseSealedError(plaintext.bytes) };
      }
      return { kind: 'chunk', chunk: checkChatCompletionChunk(parseJson(plaintext.bytes)) };
    } finally {
      plaintext.release();
    }
  }

  /**
   * Has the next record's decipher made while the stream is quiet (in Node.js), for that record to
   * take: call it once the chunk before is with the caller, so that arming it is not on its path.
   * Without it, each record makes its own (the first one's is made with the stream's keys).
   */
  prepareNext(): void {
    if (this.#keys && !this.#ended) expectNextRecord(this.#keys, 'decrypt', this.#next);
  }

  /**
   * The body ended, with `rest` left over (a line or an event it never completed): fine after the
   * final record when nothing is left, data after it when something is, else the answer was cut short.
   */
  end(rest = false): void {
    if (!this.#ended) throw new StreamTruncatedError('the streamed answer was cut short: it ended before its final record');
    if (rest) throw refused('data after the final record');
  }

  async #header(data: string): Promise<StreamKeys> {
    if (data.length > MAX_STREAM_HEADER_CHARS) throw refused(`a header over ${MAX_STREAM_HEADER_CHARS} characters`);
    let header: unknown;
    try {
      header = JSON.parse(data);
    } catch {
      throw refused('a header that is not JSON');
    }
    if (!isObject(header) || header.version !== PROTOCOL_V2_VERSION) throw refused('unsupported version');
    if (header.algorithm !== V2_STREAM_ALGORITHM) throw refused('unsupported algorithm');
    if (typeof header.salt !== 'string') throw refused('no salt');
    return deriveStreamKeys(await this.kdfKey, decodeBase64(header.salt), this.payloadId, 'decrypt');
  }
}

/** A record's JSON, behind the depth cap whole answers have (json-depth.ts: a caller's JSON.stringify recurses). */
function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw notJson();
  }
  if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) throw new SecurityError(`a streamed record is nested deeper than ${MAX_ANSWER_DEPTH}`);
  try {
    return JSON.parse(text);
  } catch {
    throw notJson();
  }
}

function notJson(): SecurityError {
  return new SecurityError('a streamed record is not UTF-8 JSON');
}
