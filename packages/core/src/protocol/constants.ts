/**
 * Every fixed fact of wire protocols v1 and v2 (docs/protocol.md),
 * in one place. Client and reference server both read them from here.
 */

/** `version` of a v1 package. */
export const PROTOCOL_VERSION = '1.0';
/** `version` of a v2 request and a v2 answer. */
export const PROTOCOL_V2_VERSION = '2.0';
/** The package's `algorithm` string; it says rsa4096 whatever the RSA modulus is. */
export const PACKAGE_ALGORITHM = 'hybrid-aes256-rsa4096';
/** `key_algorithm`: how the AES key is wrapped (RSA-OAEP, SHA-256 and MGF1-SHA-256, empty label). */
export const KEY_ALGORITHM = 'RSA-OAEP-SHA256';
/** `payload_algorithm`: how the payload is sealed. */
export const PAYLOAD_ALGORITHM = 'AES-256-GCM';
/** The `algorithm` of a v2 answer: AES-256-GCM under a key derived with HKDF-SHA256 from the request's key. */
export const V2_ANSWER_ALGORITHM = 'aes256gcm-hkdf-sha256';

/** The wire protocol versions this library speaks. */
export const PROTOCOL_VERSIONS = [1, 2] as const;
/** A wire protocol version: 1 or 2. */
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];

/**
 * v2 associated data and HKDF info, each followed by the payload id (the request's also by "\n" and the
 * tier, empty when none is sent). `\n` is the single byte 0x0A.
 */
export const V2_REQUEST_AAD_PREFIX = 'nomyo/2 request\n';
/** A v2 answer's associated data, followed by the payload id. */
export const V2_ANSWER_AAD_PREFIX = 'nomyo/2 answer\n';
/** The HKDF info of a v2 answer key, followed by the payload id. */
export const V2_ANSWER_KEY_INFO_PREFIX = 'nomyo/2 answer key\n';
/**
 * A v2 error response's sealed part (see {@link SEALED_ERROR_FIELD}): sealed with the answer key, under
 * associated data of its own, so that it can never pass for the answer, nor the answer for it.
 */
export const V2_ERROR_AAD_PREFIX = 'nomyo/2 error\n';
/** A streamed v2 answer (docs/protocol.md, "Streamed answers (v2)"): its header's `algorithm`, and its HKDF infos and record associated data, each followed by the payload id. */
export const V2_STREAM_ALGORITHM = 'aes256gcm-hkdf-sha256-stream';
/** The HKDF info of a stream's record key, followed by the payload id. */
export const V2_STREAM_KEY_INFO_PREFIX = 'nomyo/2 stream key\n';
/** The HKDF info of a stream's nonce base, followed by the payload id. */
export const V2_STREAM_NONCE_INFO_PREFIX = 'nomyo/2 stream nonce\n';
/** Then the payload id, "\n", the record's number in decimal, "\n", and `final` or `more`. */
export const V2_STREAM_RECORD_AAD_PREFIX = 'nomyo/2 stream record\n';
/** The random salt of a streamed answer's header, fresh for every answer. */
export const STREAM_SALT_BYTES = 32;
/** The events of a streamed answer: its header first, its records (unnamed, or `message`), and its final record last. */
export const STREAM_EVENTS = {
  /** The first event: the stream's algorithm and salt. */
  header: 'nomyo-stream',
  /** A record's event name, which may also be left out. */
  record: 'message',
  /** The last event: the final record. */
  final: 'nomyo-final',
} as const;
/** A router pads every record's plaintext to a multiple of this, against the token-length side channel. */
export const STREAM_PADDING_BYTES = 128;
/** A record whose plaintext, padding removed, is longer is refused. */
export const MAX_STREAM_RECORD_BYTES = 1024 * 1024;
/**
 * The longest line a stream reader holds: a record of 1 MiB with generous padding, base64 (4 characters
 * for 3 bytes). A longer line is refused before it is all in memory.
 */
export const MAX_STREAM_LINE_CHARS = 8 * 1024 * 1024;
/** Records in one stream, the final one counted (the nonce counter's bound). */
export const MAX_STREAM_RECORDS = 2 ** 32;
/** A router sends a heartbeat comment after this much silence; a client gives up after {@link STREAM_IDLE_TIMEOUT_MS} of it. */
export const STREAM_HEARTBEAT_MS = 15_000;
/** A client gives up on a started stream after this much silence (heartbeats count). */
export const STREAM_IDLE_TIMEOUT_MS = 60_000;
/**
 * What a stream reader takes of lines that bring no data between two events (comments such as
 * heartbeats, blank lines, `event:`, `id:` and unknown fields), in characters with their line ends.
 * A router's heartbeats over an hour of silence are 3.4 KB (4681 of them fill it: 19 hours at one
 * every 15 s, 78 minutes at one a second); a peer that sends filler without end
 * (cheap to send compressed: 256 MiB of blank lines gzip to 261 KB) is refused instead of keeping
 * the reader busy parsing it.
 */
export const MAX_STREAM_FILLER_CHARS = 64 * 1024;
/** The longest header event's data a client parses: its JSON is three short fields, unknown ones allowed. */
export const MAX_STREAM_HEADER_CHARS = 4 * 1024;
/** The `Content-Type` of a streamed answer. */
export const EVENT_STREAM_CONTENT_TYPE = 'text/event-stream; charset=utf-8';
/** The `Accept` of a request for a streamed answer (the client's to the router, the router's to its upstream): a whole answer may come instead. */
export const STREAM_ACCEPT = 'text/event-stream, application/json';

/** HKDF of the answer key: SHA-256, empty salt (RFC 5869: the same as HashLen zero bytes). */
export const V2_HKDF_HASH = 'SHA-256';
/**
 * The longest X-Nomyo-Protocol value looked at: a router lists a few short versions. Anything longer
 * is malformed and read as "v1 only" (never parsed, so a huge header costs nothing).
 */
export const MAX_PROTOCOL_HEADER_CHARS = 256;

/** An AES-256 key: 32 bytes. */
export const AES_KEY_BYTES = 32;
/** An AES-256 key: 256 bits. */
export const AES_KEY_BITS = AES_KEY_BYTES * 8;
/** An AES-GCM nonce: 12 bytes (96 bits), fresh and random for every seal. */
export const GCM_NONCE_BYTES = 12;
/** An AES-GCM tag: 16 bytes. */
export const GCM_TAG_BYTES = 16;
/** An AES-GCM tag: 128 bits. */
export const GCM_TAG_BITS = GCM_TAG_BYTES * 8;

/** RSA-OAEP's hash, and its MGF1's. */
export const RSA_HASH = 'SHA-256';
/** Smaller RSA keys are refused, on both sides. */
export const RSA_MIN_BITS = 2048;
/** The RSA modulus this library generates by default. */
export const RSA_DEFAULT_BITS = 4096;
/** 65537, big-endian. */
export const RSA_PUBLIC_EXPONENT = new Uint8Array([1, 0, 1]);

/** The existing clients refuse a serialized request plaintext above this, before encrypting. */
export const MAX_REQUEST_PLAINTEXT_BYTES = 10 * 1024 * 1024;

/** The router's two endpoints, appended to its URL. */
export const PATHS = {
  /** `GET`: the router's RSA public key, SPKI PEM, and `X-Nomyo-Protocol`. */
  publicKey: '/pki/public_key',
  /** `POST`: a request package; the answer package, or an error. */
  secureCompletion: '/v1/chat/secure_completion',
} as const;

/** The headers of the protocol. */
export const HEADERS = {
  /** The request's id: bound into the seal in v2, and the answer's. */
  payloadId: 'X-Payload-ID',
  /** v1 only: the client's SPKI PEM public key, percent-encoded, that the answer is sealed to. */
  publicKey: 'X-Public-Key',
  /** `standard`, `high` or `maximum`, when one was chosen. */
  securityTier: 'X-Security-Tier',
  /** `Bearer <api key>`, when one is set. */
  authorization: 'Authorization',
  /** A request package's content type ({@link PACKAGE_CONTENT_TYPE}). */
  contentType: 'Content-Type',
  /** On the router's key response: the protocol versions it speaks, e.g. `1, 2`. None: v1 only. */
  protocol: 'X-Nomyo-Protocol',
} as const;

/** X-Payload-ID: 1 to 128 printable ASCII characters (a UUID by default); it goes into a header and the router's logs. */
export const PAYLOAD_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/**
 * The largest response body a client reads: a 64 MiB completion is about 86 MiB as a package, and
 * nothing larger is read into memory. Error bodies are read only as far as their `detail` needs.
 */
export const MAX_ANSWER_BODY_BYTES = 128 * 1024 * 1024;
/** The largest router key response read: an RSA-16384 key's PEM is some 3 KiB. */
export const MAX_KEY_BODY_BYTES = 64 * 1024;
/** At most this much of an error response's body is read. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * The field of a v2 error response (`{"detail": <generic>, "sealed_error": <v2 answer package>}`) that
 * holds what only the client may read: an error whose text comes from the upstream, which saw the
 * plaintext (a model name, a fragment of the prompt). Its plaintext is `{"error": {message, type,
 * code, status}}`, as a stream's final record carries an error. Clients that do not know the field
 * read the generic `detail`.
 */
export const SEALED_ERROR_FIELD = 'sealed_error';

/** The `Content-Type` of a request package (routers do not check it). */
export const PACKAGE_CONTENT_TYPE = 'application/octet-stream';

/** The security tiers a request may ask for, from the least to the most restricted set of models. */
export const SECURITY_TIERS = ['standard', 'high', 'maximum'] as const;
/** One of {@link SECURITY_TIERS}: sent as `X-Security-Tier`. */
export type SecurityTier = (typeof SECURITY_TIERS)[number];

/** At most this many printable characters of a router's `detail` reach the caller. */
export const MAX_DETAIL_CHARS = 100;

/**
 * At most this many printable characters of a sealed error's `message` (an upstream's reason, bound
 * to the request): a context-length or schema error names what to fix in a few hundred characters,
 * as the model's server wrote it, where a `detail` in the clear is the router's own short text.
 */
export const MAX_SEALED_MESSAGE_CHARS = 2000;

/**
 * The deepest nesting of arrays and objects a decrypted answer may have. A chat.completion nests 9
 * deep at most (choices → logprobs → content → top_logprobs → bytes); deeper answers are refused
 * before JSON.parse, so no engine's parser, JSON.stringify or deep copy can overflow its stack on them.
 */
export const MAX_ANSWER_DEPTH = 64;
