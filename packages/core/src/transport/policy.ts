/** What may be sent at all: checked before anything leaves the process. */
import type { SecurityTier } from '../protocol/constants.js';
import { isPayloadId, isSecurityTier, PAYLOAD_ID_RULE, SECURITY_TIER_RULE } from '../protocol/request-headers.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';

/**
 * The router's base URL without a trailing slash. `https:` always; `http:` only with
 * `allowHttp` (any letter case: `new URL` normalises the scheme); any other scheme never. It may
 * have a path (a router behind a proxy's prefix), but not `/v1` alone, an OpenAI SDK's. Messages say "the
 * router URL": it was `baseUrl`, `routerUrl`, `NOMYO_SERVER_URL` or a CLI's `--url`.
 */
export function routerBaseUrl(url: string, allowHttp: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError('the router URL is not a valid URL: give it as https://host:port');
  }
  if (parsed.protocol === 'http:') {
    if (!allowHttp) {
      throw new SecurityError('refusing plain http: the API key and metadata would travel unencrypted; use https or set allowHttp: true for local testing');
    }
  } else if (parsed.protocol !== 'https:') {
    // `localhost:8080` parses as the scheme `localhost:`: say what is missing (with the host and
    // port alone: the rest may hold a secret).
    const hostPort = /^([a-z0-9.-]+:\d+)(\/|$)/i.exec(url)?.[1];
    const hint = hostPort ? `: give it as https://${hostPort}` : '';
    throw new SecurityError(`refusing the ${parsed.protocol} scheme: only https (or http with allowHttp) is allowed${hint}`);
  }
  if (parsed.username || parsed.password) throw new InvalidArgumentError('the router URL must not carry credentials; use apiKey');
  if (parsed.search || parsed.hash) throw new InvalidArgumentError('the router URL must not have a query or fragment');
  if (/^\/v1\/*$/i.test(parsed.pathname)) {
    throw new InvalidArgumentError(`the router URL is the router's own (${parsed.origin}), without the /v1 an OpenAI SDK's baseURL has`);
  }
  return parsed.href.replace(/\/+$/, '');
}

/** An API key goes into a header: refuse anything that could split or smuggle headers. */
export function checkApiKeyFormat(apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  if (typeof apiKey !== 'string' || !/^[\x20-\x7e]+$/.test(apiKey)) {
    // Never echo the key: it is a secret.
    throw new InvalidArgumentError('apiKey must be non-empty printable ASCII (no control characters such as CR or LF)');
  }
}

export function checkSecurityTier(tier: unknown): SecurityTier | undefined {
  if (tier === undefined || tier === null) return undefined;
  if (!isSecurityTier(tier)) throw new InvalidArgumentError(`security_tier must be ${SECURITY_TIER_RULE}`);
  return tier;
}

/** X-Payload-ID goes into a header and the router's logs. */
export function checkPayloadId(payloadId: unknown): void {
  if (!isPayloadId(payloadId)) throw new InvalidArgumentError(`payloadId must be ${PAYLOAD_ID_RULE}`);
}
