/** The request payload to bytes and the answer bytes to a checked completion: the plaintext ends of a request. */
import { MAX_ANSWER_DEPTH, MAX_REQUEST_PLAINTEXT_BYTES, PACKAGE_ALGORITHM, V2_ANSWER_ALGORITHM, type ProtocolVersion } from '../protocol/constants.js';
import { checkChatCompletion, NOT_A_COMPLETION, type ChatCompletion, type SecureMetadata } from '../protocol/completion.js';
import { jsonNestingExceeds } from '../protocol/json-depth.js';
import { parseJsonBytes } from '../protocol/json-parse.js';
import { stringifyJsonBytes } from '../protocol/json-stringify.js';
import { sealablePlaintexts } from '../protocol/body/layout.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';
import type { ByteSource, OwnedBytes } from '../memory/owned-bytes.js';

/**
 * The payload's UTF-8 JSON, refused above the protocol's limit before anything is encrypted, written
 * straight into memory from `into` (secure memory: locked, dump-excluded with @nomyo/native; a long
 * prompt goes there from its string without a second copy). The caller releases it, or hands it to
 * body/seal.ts sealBody, which does: taken from {@link sealablePayloads}, a large one is then sealed
 * where it is.
 */
export function serializePayload(payload: object, into: ByteSource): OwnedBytes {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidArgumentError('payload must be a JSON object');
  let json: OwnedBytes | undefined;
  try {
    json = stringifyJsonBytes(payload, { into, maxBytes: MAX_REQUEST_PLAINTEXT_BYTES, tooLarge: payloadTooLarge });
  } catch (err) {
    // JSON.stringify's own refusals: a TypeError (a cycle, a BigInt), a RangeError (nesting deeper
    // than the stack, a string longer than the engine allows). A getter's or toJSON's own error of
    // another class is the caller's: passed on (one of these two classes is wrapped, as its cause).
    if (err instanceof TypeError || err instanceof RangeError) {
      throw new InvalidArgumentError('payload cannot be serialized as JSON: a cycle, a BigInt, nesting deeper than the stack allows, or a value too large (its cause says which)', { cause: err });
    }
    throw err;
  }
  if (!json) throw new InvalidArgumentError('payload must serialize to a JSON object');
  return json;
}

/** Secure memory for payloads that are to be sealed: a large one placed so that its package is sealed around it, one buffer for both. */
export function sealablePayloads(secure: ByteSource): ByteSource {
  return sealablePlaintexts(secure, secure);
}

function payloadTooLarge(): InvalidArgumentError {
  return new InvalidArgumentError(`the serialized request exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
}

/**
 * The decrypted answer bytes as a checked chat.completion, or a SecurityError: not UTF-8 JSON,
 * nested deeper than MAX_ANSWER_DEPTH (refused before parsing), or not a chat.completion. Long
 * strings (the content) are decoded once, straight from the bytes, which are only read (the caller
 * zeroes them).
 */
export function parseCompletion(bytes: Uint8Array): ChatCompletion & { _metadata?: SecureMetadata } {
  let value: unknown;
  try {
    value = parseJsonBytes(bytes, { fatal: true, parse: parseAnswerJson });
  } catch (err) {
    if (err instanceof SecurityError) throw err;
    throw notJson();
  }
  return checkChatCompletion(value);
}

/** What the client adds to a completion (docs/protocol.md, "Metadata the client adds"); `pkg` is the answer, for its `processed_at`. */
export function completionMetadata(pkg: unknown, payloadId: string, protocol: ProtocolVersion): SecureMetadata {
  const processedAt = (pkg as { processed_at?: unknown }).processed_at;
  return {
    payload_id: payloadId,
    processed_at: typeof processedAt === 'number' ? processedAt : undefined,
    is_encrypted: true,
    encryption_algorithm: protocol === 2 ? V2_ANSWER_ALGORITHM : PACKAGE_ALGORITHM,
    protocol,
  };
}

/** JSON.parse behind the depth cap (on the text without its long strings, which nest nothing). */
function parseAnswerJson(text: string): unknown {
  if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) throw new SecurityError(`${NOT_A_COMPLETION}: nested deeper than ${MAX_ANSWER_DEPTH}`);
  return JSON.parse(text);
}

function notJson(): SecurityError {
  return new SecurityError('the decrypted answer is not UTF-8 JSON');
}
