/**
 * Forwarding to an OpenAI-compatible upstream: `POST {base}/chat/completions` with the decrypted
 * request. Upstream failures become safe router errors. A 4xx (but 401) is an UpstreamError: its
 * message repeats the request, so it travels sealed to a v2 client and never in the clear (status
 * 400, or 429 with its Retry-After, and a generic detail). A 401 is the router's own credentials
 * failing (502); a 5xx is 502, an unreachable or silent upstream 503, each with our own text only.
 */
import { sanitizeDetail, type SealedError } from '@nomyo/core/protocol';
import { jsonBytes, linkedController } from '@nomyo/core/internal';
import { HttpError, UpstreamError } from './http-error.js';
import type { ChatRequest, CompletionModel, ModelContext } from './types.js';

export interface UpstreamOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

interface ErrorFields {
  message?: unknown;
  type?: unknown;
  code?: unknown;
}

/**
 * What the upstream said about its `status`: `detail` (FastAPI), OpenAI's `error` (message, type,
 * code), vLLM's top-level `message`, `type` and `code`, or else the raw text.
 */
function upstreamError(text: string, status: number): SealedError {
  let message: unknown = text;
  let type: unknown;
  let code: unknown;
  try {
    const body = JSON.parse(text) as (ErrorFields & { detail?: unknown; error?: ErrorFields }) | null;
    const fields = typeof body?.error === 'object' && body.error !== null ? body.error : (body ?? {});
    const given = body?.detail ?? fields.message;
    if (given !== undefined) message = typeof given === 'string' ? given : JSON.stringify(given);
    ({ type, code } = fields);
  } catch {
    // Not JSON: the text itself.
  }
  return {
    message: sanitizeDetail(message) ?? `the inference backend refused the request (${status})`,
    type: typeof type === 'string' ? type : 'upstream_error',
    code: typeof code === 'string' || (typeof code === 'number' && Number.isFinite(code)) ? code : null,
    status,
  };
}

/** A Retry-After worth passing on: delta-seconds or an HTTP date, nothing else of the upstream's. */
function retryAfterHeader(value: string | null): Record<string, string> {
  const text = value?.trim() ?? '';
  return /^\d{1,9}$/.test(text) || /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text) ? { 'Retry-After': text } : {};
}

function timedOut(signal: AbortSignal): boolean {
  return (signal.reason as Error | undefined)?.name === 'TimeoutError';
}

/** One call of the upstream, its response read whole; failures to reach it or read it are safe router errors. */
async function callUpstream(url: string, init: RequestInit, signal: AbortSignal): Promise<{ status: number; retryAfter: string | null; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal });
  } catch {
    throw new HttpError(503, timedOut(signal) ? 'inference backend timed out' : 'inference backend unavailable');
  }
  try {
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
  } catch {
    throw new HttpError(timedOut(signal) ? 503 : 502, 'inference backend sent an incomplete response');
  }
}

export function upstreamModel(options: UpstreamOptions): CompletionModel {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;

  return async (request: ChatRequest, context: ModelContext): Promise<unknown> => {
    // The tier is a router concern; a stray field from an old client must not reach the backend.
    const { security_tier: _tier, ...forwarded } = request;
    const controller = linkedController([context.signal], options.timeoutMs);
    // The plaintext request as bytes, long strings written straight in (a 10 MiB document makes no
    // 10 MiB JSON string), zeroed once the call is over, which a string could not be.
    const body = jsonBytes(forwarded);
    let reply: Awaited<ReturnType<typeof callUpstream>>;
    try {
      reply = await callUpstream(url, { method: 'POST', headers, body }, controller.signal);
    } finally {
      controller.abort(); // releases the timer and the links to the caller's signal; no more of the body is sent
      body.fill(0);
    }
    const { status, retryAfter, text } = reply;
    // A 401 from upstream is the router's own key failing, not the caller's: passing it through
    // would tell the caller its API key is wrong.
    if (status === 401) throw new HttpError(502, 'inference backend refused the router credentials');
    if (status === 429) throw new UpstreamError(429, 'the inference backend is rate limiting (4xx)', upstreamError(text, status), retryAfterHeader(retryAfter));
    if (status >= 400 && status < 500) throw new UpstreamError(400, 'the inference backend refused the request (4xx)', upstreamError(text, status));
    if (status !== 200) throw new HttpError(502, `inference backend error (${status})`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(502, 'inference backend sent a response that is not JSON');
    }
  };
}
