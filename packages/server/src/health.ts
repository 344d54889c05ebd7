/**
 * `GET /healthz`, for load balancers and readiness probes: 200 `{"status": "ok", "protocols": [1, 2],
 * "key_fingerprint": "<hex>", "accepted_key_fingerprints": [...]}`, or 503 with `"status":
 * "draining"` once close() has begun (with `Connection: close`: the balancer should stop sending
 * here). Public facts only (a fingerprint is the SHA-256 of a public key), so it needs no API key.
 */
import type { ProtocolVersion } from '@nomyo/core/protocol';
import { DRAIN_HEADERS } from './drain.js';
import { jsonResponse, type RouterResponse } from './respond.js';

export const HEALTH_PATH = '/healthz';

export interface Health {
  status: 'ok' | 'draining';
  /** The protocol versions this router opens. */
  protocols: ProtocolVersion[];
  /** Lowercase hex SHA-256 of the public key's SPKI DER, as `server.fingerprint`. */
  key_fingerprint: string;
  /** Those of the keys that also open requests (`acceptKeyFiles`): how a rotation's steps are checked replica by replica. */
  accepted_key_fingerprints: readonly string[];
}

export function healthResponse(draining: boolean, protocol: ProtocolVersion, fingerprint: string, accepted: readonly string[]): RouterResponse {
  const health: Health = {
    status: draining ? 'draining' : 'ok',
    protocols: protocol >= 2 ? [1, 2] : [1],
    key_fingerprint: fingerprint,
    accepted_key_fingerprints: accepted,
  };
  return jsonResponse(draining ? 503 : 200, health, { 'Cache-Control': 'no-store', ...(draining ? DRAIN_HEADERS : {}) });
}
