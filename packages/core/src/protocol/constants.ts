/**
 * Every fixed fact of wire protocol v1 (../shared/PROTOCOL.md), in one place.
 * Client and reference server both read them from here.
 */

export const PROTOCOL_VERSION = '1.0';
/** The package's `algorithm` string; it says rsa4096 whatever the RSA modulus is. */
export const PACKAGE_ALGORITHM = 'hybrid-aes256-rsa4096';
export const KEY_ALGORITHM = 'RSA-OAEP-SHA256';
export const PAYLOAD_ALGORITHM = 'AES-256-GCM';

export const AES_KEY_BYTES = 32;
export const AES_KEY_BITS = AES_KEY_BYTES * 8;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const GCM_TAG_BITS = GCM_TAG_BYTES * 8;

export const RSA_HASH = 'SHA-256';
export const RSA_MIN_BITS = 2048;
export const RSA_DEFAULT_BITS = 4096;
/** 65537, big-endian. */
export const RSA_PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);

/** The existing clients refuse a serialized request plaintext above this, before encrypting. */
export const MAX_REQUEST_PLAINTEXT_BYTES = 10 * 1024 * 1024;

export const PATHS = {
  publicKey: '/pki/public_key',
  secureCompletion: '/v1/chat/secure_completion',
} as const;

export const HEADERS = {
  payloadId: 'X-Payload-ID',
  publicKey: 'X-Public-Key',
  securityTier: 'X-Security-Tier',
  authorization: 'Authorization',
  contentType: 'Content-Type',
} as const;

/** X-Payload-ID: 1 to 128 printable ASCII characters (a UUID by default); it goes into a header and the router's logs. */
export const PAYLOAD_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/**
 * The largest answer body a client reads: a 64 MiB completion is about 86 MiB as a package, and
 * nothing larger is read into memory. Error bodies are read only as far as their `detail` needs.
 */
export const MAX_ANSWER_BODY_BYTES = 128 * 1024 * 1024;
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

export const PACKAGE_CONTENT_TYPE = 'application/octet-stream';

export const SECURITY_TIERS = ['standard', 'high', 'maximum'] as const;
export type SecurityTier = (typeof SECURITY_TIERS)[number];

/** At most this many printable characters of a router's `detail` reach the caller. */
export const MAX_DETAIL_CHARS = 100;
