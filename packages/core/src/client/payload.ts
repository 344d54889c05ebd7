/** The request payload to bytes and the answer bytes to a checked completion: the plaintext ends of a request. */
import { MAX_REQUEST_PLAINTEXT_BYTES } from '../protocol/constants.js';
import { checkChatCompletion, type ChatCompletion, type SecureMetadata } from '../protocol/completion.js';
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

export function parseCompletion(bytes: Uint8Array): ChatCompletion & { _metadata?: SecureMetadata } {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SecurityError('the decrypted answer is not UTF-8 JSON');
  }
  return checkChatCompletion(value);
}
