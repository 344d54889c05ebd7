/**
 * The sizes where the library changes how it handles bytes, each named once. They are not part of
 * the wire protocol (those are in protocol/constants.ts): another implementation may choose others.
 */

/**
 * A body or plaintext from this size on is large: sealed and opened in place (one buffer where two
 * were), read into secure memory on the client, sent to Node's fetch in copied pieces, and pooled in
 * buffers rounded to this size. Below it a second buffer costs next to nothing.
 */
export const LARGE_BODY_BYTES = 64 * 1024;

/**
 * The most a response's Content-Length reserves before that much of the body has come: it is only
 * the sender's word, and a buffer of secure memory is locked as it is taken. Beyond it, the buffer
 * grows to the declared length once this much has arrived (one copy of this size, for bodies larger
 * than any the benchmarks send).
 */
export const FIRST_BODY_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * A JSON string of this many characters (or more) is long: set aside from JSON.stringify and
 * JSON.parse and copied straight between its string and the bytes. A body shorter than this holds
 * no long string, so it is parsed whole.
 */
export const LONG_STRING_BYTES = 16 * 1024;
