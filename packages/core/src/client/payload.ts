/** The request payload to bytes and the answer bytes to a checked completion: the plaintext ends of a request. */
import { MAX_ANSWER_DEPTH, MAX_REQUEST_PLAINTEXT_BYTES } from '../protocol/constants.js';
import { checkChatCompletion, NOT_A_COMPLETION, type ChatCompletion, type SecureMetadata } from '../protocol/completion.js';
import { jsonNestingExceeds } from '../protocol/json-depth.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';
import type { SecureByteContext } from '../memory/context.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The payload's UTF-8 JSON, refused above the protocol's limit before anything is encrypted.
 * The bytes come from `ctx` (locked, dump-excluded memory with @nomyo/native): release them with it.
 */
export function serializePayload(payload: object, ctx: SecureByteContext): Uint8Array<ArrayBuffer> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidArgumentError('payload must be a JSON object');
  const json = JSON.stringify(payload);
  // A UTF-8 byte count is at least the UTF-16 length: refuse early without encoding huge strings.
  if (json.length > MAX_REQUEST_PLAINTEXT_BYTES) throw payloadTooLarge();
  const bytes = ctx.encodeUtf8(json);
  if (bytes.length > MAX_REQUEST_PLAINTEXT_BYTES) {
    ctx.release(bytes);
    throw payloadTooLarge();
  }
  return bytes;
}

function payloadTooLarge(): InvalidArgumentError {
  return new InvalidArgumentError(`the serialized request exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
}

/**
 * The decrypted answer bytes as a checked chat.completion, or a SecurityError: not UTF-8 JSON,
 * nested deeper than MAX_ANSWER_DEPTH (refused before parsing), or not a chat.completion.
 */
export function parseCompletion(bytes: Uint8Array): ChatCompletion & { _metadata?: SecureMetadata } {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw notJson();
  }
  if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) throw new SecurityError(`${NOT_A_COMPLETION}: nested deeper than ${MAX_ANSWER_DEPTH}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw notJson();
  }
  return checkChatCompletion(value);
}

function notJson(): SecurityError {
  return new SecurityError('the decrypted answer is not UTF-8 JSON');
}
