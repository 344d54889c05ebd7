/**
 * What an OpenAI-compatible upstream says when it refuses or fails: the error's text, which may
 * repeat the request (a model name, a fragment of the prompt), so it travels only sealed to a v2
 * client (http-error.ts, UpstreamError); and a Retry-After worth passing on.
 */
import { MAX_SEALED_MESSAGE_CHARS, sanitizeDetail, type SealedError } from '@nomyo/core/protocol';

/**
 * The longest `type` or `code` passed on (OpenAI's are a few words): a longer one is dropped, so a
 * stream's final record stays far below the 1 MiB a client opens (1.2 MB of `type` made it refuse
 * the record as a SecurityError, and the caller never saw the upstream's error).
 */
const MAX_FIELD_CHARS = 256;

interface ErrorFields {
  message?: unknown;
  type?: unknown;
  code?: unknown;
  param?: unknown;
}

/**
 * What the upstream said, as a sealed error: `detail` (FastAPI), OpenAI's `error` (message, type,
 * code, param), vLLM's top-level `message`, `type`, `code` and `param`, or else the raw text. `status` is the HTTP
 * status it came with; an error in the middle of a stream has none.
 */
export function upstreamError(text: string, status?: number): SealedError {
  let message: unknown = text;
  let type: unknown;
  let code: unknown;
  let param: unknown;
  try {
    const body = JSON.parse(text) as (ErrorFields & { detail?: unknown; error?: ErrorFields }) | null;
    const fields = typeof body?.error === 'object' && body.error !== null ? body.error : (body ?? {});
    const given = body?.detail ?? fields.message ?? (typeof body?.error === 'string' ? body.error : undefined);
    if (given !== undefined) message = typeof given === 'string' ? given : JSON.stringify(given);
    ({ type, code, param } = fields);
  } catch {
    // Not JSON: the text itself.
  }
  return {
    message: sanitizeDetail(message, MAX_SEALED_MESSAGE_CHARS) ?? (status === undefined ? 'the inference backend failed part-way through the answer' : `the inference backend refused the request (${status})`),
    type: typeof type === 'string' && type.length <= MAX_FIELD_CHARS ? type : 'upstream_error',
    code: (typeof code === 'string' && code.length <= MAX_FIELD_CHARS) || (typeof code === 'number' && Number.isFinite(code)) ? code : null,
    param: typeof param === 'string' && param.length <= MAX_FIELD_CHARS ? param : null,
    ...(status === undefined ? {} : { status }),
  };
}

/** A Retry-After worth passing on: delta-seconds or an HTTP date, nothing else of the upstream's. */
export function retryAfterHeader(value: string | null): Record<string, string> {
  const text = value?.trim() ?? '';
  return /^\d{1,9}$/.test(text) || /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text) ? { 'Retry-After': text } : {};
}
