/**
 * The rules for the request headers both sides check, once: the client before sending, the router
 * on arrival (docs/protocol.md, "Endpoints and headers").
 */
import { PAYLOAD_ID_PATTERN, SECURITY_TIERS, type SecurityTier } from './constants.js';

/** What an X-Payload-ID must be, for error messages. It goes into a header and the router's logs. */
export const PAYLOAD_ID_RULE = '1 to 128 printable ASCII characters without spaces (a UUID by default)';

/** Whether `value` may be an `X-Payload-ID` ({@link PAYLOAD_ID_RULE}). */
export function isPayloadId(value: unknown): value is string {
  return typeof value === 'string' && PAYLOAD_ID_PATTERN.test(value);
}

/** What an X-Security-Tier must be, for error messages. */
export const SECURITY_TIER_RULE = `one of ${SECURITY_TIERS.join(', ')}`;

/** Whether `value` is one of the security tiers ({@link SECURITY_TIER_RULE}). */
export function isSecurityTier(value: unknown): value is SecurityTier {
  return (SECURITY_TIERS as readonly unknown[]).includes(value);
}
