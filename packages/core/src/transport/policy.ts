/** What may be sent at all: checked before anything leaves the process. */
import type { SecurityTier } from '../protocol/constants.js';
import { isPayloadId, isSecurityTier, PAYLOAD_ID_RULE, SECURITY_TIER_RULE } from '../protocol/request-headers.js';
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
