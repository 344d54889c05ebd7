/** The request payload to bytes and the answer bytes to a checked completion: the plaintext ends of a request. */
import { MAX_ANSWER_DEPTH, MAX_REQUEST_PLAINTEXT_BYTES } from '../protocol/constants.js';
import { checkChatCompletion, NOT_A_COMPLETION, type ChatCompletion, type SecureMetadata } from '../protocol/completion.js';
import { jsonNestingExceeds } from '../protocol/json-depth.js';
import { parseJsonBytes, stringifyJsonBytes } from '../protocol/json-bytes.js';
import { MIN_IN_PLACE_BYTES, inPlaceRoom } from '../protocol/package-bytes.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';
import type { SecureByteContext } from '../memory/context.js';

/**
 * The payload's UTF-8 JSON, refused above the protocol's limit before anything is encrypted. The
 * bytes are written straight into memory from `ctx` (locked, dump-excluded with @nomyo/native; a long
 * prompt goes there from its string without a second copy): release them with it. `inPlace`: a large
 * payload goes where its package can be sealed around it (package-bytes.ts inPlaceRoom;
 * `ctx.placement` tells where), so that the request body needs no buffer of its own.
 */
export function serializePayload(payload: object, ctx: SecureByteContext, inPlace = false): Uint8Array<ArrayBuffer> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new InvalidArgumentError('payload must be a JSON object');
  const json = stringifyJsonBytes(payload, {
    alloc: (size) => {
      if (!inPlace || size < MIN_IN_PLACE_BYTES) return ctx.alloc(size);
      const { bytes, start } = inPlaceRoom(size);
      return ctx.view(ctx.alloc(bytes), start, size);
    },
    release: (bytes) => ctx.release(bytes),
    maxBytes: MAX_REQUEST_PLAINTEXT_BYTES,
    tooLarge: payloadTooLarge,
  });
  if (!json) throw new InvalidArgumentError('payload must serialize to a JSON object');
  return ctx.head(json.buffer as Uint8Array<ArrayBuffer>, json.length);
}

function payloadTooLarge(): InvalidArgumentError {
  return new InvalidArgumentError(`the serialized request exceeds ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
}

/**
 * The decrypted answer bytes as a checked chat.completion, or a SecurityError: not UTF-8 JSON,
 * nested deeper than MAX_ANSWER_DEPTH (refused before parsing), or not a chat.completion. Long
 * strings (the content) are decoded once, straight from the bytes, whose escapes are undone in
 * place: `bytes` is scratch afterwards, zeroed by the caller as before.
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

/** JSON.parse behind the depth cap (on the text without its long strings, which nest nothing). */
function parseAnswerJson(text: string): unknown {
  if (jsonNestingExceeds(text, MAX_ANSWER_DEPTH)) throw new SecurityError(`${NOT_A_COMPLETION}: nested deeper than ${MAX_ANSWER_DEPTH}`);
  return JSON.parse(text);
}

function notJson(): SecurityError {
  return new SecurityError('the decrypted answer is not UTF-8 JSON');
}
