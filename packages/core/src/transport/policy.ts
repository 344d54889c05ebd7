/** What may be sent at all: checked before anything leaves the process. */
import { PAYLOAD_ID_PATTERN, SECURITY_TIERS, type SecurityTier } from '../protocol/constants.js';
import { InvalidArgumentError, SecurityError } from '../errors.js';

/**
 * The router's base URL without a trailing slash. `https:` always; `http:` only with
 * `allowHttp` (any letter case: `new URL` normalises the scheme); any other scheme never.
 */
export function routerBaseUrl(url: string, allowHttp: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError('routerUrl is not a valid URL');
  }
  if (parsed.protocol === 'http:') {
    if (!allowHttp) {
      throw new SecurityError('refusing plain http: the API key and metadata would travel unencrypted; use https or set allowHttp: true for local testing');
    }
  } else if (parsed.protocol !== 'https:') {
    throw new SecurityError(`refusing the ${parsed.protocol} scheme: only https (or http with allowHttp) is allowed`);
  }
  if (parsed.username || parsed.password) throw new InvalidArgumentError('routerUrl must not carry credentials; use apiKey');
  if (parsed.search || parsed.hash) throw new InvalidArgumentError('routerUrl must not have a query or fragment');
  return parsed.href.replace(/\/+$/, '');
}

/** An API key goes into a header: refuse anything that could split or smuggle headers. */
export function checkApiKey(apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  if (typeof apiKey !== 'string' || !/^[\x20-\x7e]+$/.test(apiKey)) {
    // Never echo the key: it is a secret.
    throw new InvalidArgumentError('apiKey must be non-empty printable ASCII (no control characters such as CR or LF)');
  }
}

export function checkSecurityTier(tier: unknown): SecurityTier | undefined {
  if (tier === undefined || tier === null) return undefined;
  if (!(SECURITY_TIERS as readonly unknown[]).includes(tier)) {
    throw new InvalidArgumentError(`security_tier must be one of ${SECURITY_TIERS.join(', ')}`);
  }
  return tier as SecurityTier;
}

/** X-Payload-ID goes into a header and the router's logs: printable ASCII, 1 to 128 characters. */
export function checkPayloadId(payloadId: unknown): void {
  if (typeof payloadId !== 'string' || !PAYLOAD_ID_PATTERN.test(payloadId)) {
    throw new InvalidArgumentError('payloadId must be 1 to 128 printable ASCII characters without spaces (a UUID by default)');
  }
}
