/**
 * Reading what an SDK hands to `fetch` (URL, method, headers, body, signal) for createSecureFetch.
 * Nothing here touches the network; anything that is not a chat completion is refused up front.
 */
import { InvalidArgumentError, SecurityError } from '../errors.js';

export type FetchInput = string | URL | Request;

/** The parts of an SDK request that createSecureFetch uses. Other headers are dropped, never sent. */
export interface ChatRequestParts {
  payload: Record<string, unknown>;
  apiKey: string | undefined;
  securityTier: unknown;
  signal: AbortSignal | undefined;
  /** `stream: true`: the payload (with its `stream_options`) goes to streamSecureRequest. */
  stream: boolean;
}

const CHAT_PATH = /\/chat\/completions\/?$/;
// Only for resolving relative URLs (the path is all we look at); never contacted.
const PLACEHOLDER_BASE = 'http://nomyo.invalid/';

/**
 * Checks that the request is `POST …/chat/completions` and takes it apart. Throws SecurityError
 * for any other endpoint, so an SDK call such as `embeddings.create` never leaves in plaintext.
 */
export async function readChatRequest(input: FetchInput, init: RequestInit | undefined): Promise<ChatRequestParts> {
  const request = typeof Request !== 'undefined' && input instanceof Request ? input : undefined;
  const url = new URL(request ? request.url : String(input), PLACEHOLDER_BASE);
  const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
  if (method !== 'POST' || !CHAT_PATH.test(url.pathname)) {
    throw new SecurityError(
      `createSecureFetch only sends chat completions (POST …/chat/completions); refusing ${method} ${url.pathname} so nothing goes out in plaintext`,
    );
  }
  // As in fetch itself: init's headers and body replace the Request's.
  const headers = new Headers(init?.headers ?? request?.headers);
  const body = await bodyText(init?.body !== undefined ? init.body : request ? await request.text() : undefined);
  const payload = parsePayload(body);

  const { stream, stream_options: streamOptions, security_tier: bodyTier, ...rest } = payload;
  return {
    // `stream` chooses the client's method; `stream_options` only means something to a stream.
    payload: stream === true && streamOptions !== undefined ? { ...rest, stream_options: streamOptions } : rest,
    apiKey: bearerToken(headers.get('authorization')),
    securityTier: bodyTier ?? headers.get('x-security-tier') ?? undefined,
    signal: init?.signal ?? request?.signal ?? undefined,
    stream: stream === true,
  };
}

async function bodyText(body: BodyInit | null | undefined): Promise<string> {
  if (body === undefined || body === null) throw new InvalidArgumentError('a chat completion request needs a JSON body');
  if (typeof body === 'string') return body;
  if (typeof FormData !== 'undefined' && body instanceof FormData) throw new InvalidArgumentError('a chat completion body must be JSON, not form data');
  if (body instanceof URLSearchParams) throw new InvalidArgumentError('a chat completion body must be JSON, not URL-encoded');
  // Uint8Array, ArrayBuffer, Blob, ReadableStream: Response decodes every BodyInit as UTF-8 for us.
  return new Response(body).text();
}

function parsePayload(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('the chat completion body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError('the chat completion body must be a JSON object');
  return value as Record<string, unknown>;
}

function bearerToken(header: string | null): string | undefined {
  const match = header === null ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
}
