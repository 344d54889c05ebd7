/** Texts every strict base64 decoder here must refuse (base64.ts on strings, base64-bytes.ts on bytes). */
export const INVALID_BASE64: Array<[what: string, text: string]> = [
  ['no padding', 'QUJD' + 'QQ'],
  ['base64url alphabet', 'ab-_'],
  ['whitespace', 'QUJD\nQUJD'],
  ['padding in the middle', 'QQ==QUJD'],
  ['three pad characters', 'Q==='],
  ['non-canonical pad bits', 'QR=='],
  ['non-canonical pad bits, one pad', 'QUF='],
  ['stray character', 'QUJ*'],
  ['a pad character before the padding', 'QU=D'],
  ['a stray character in the last quad', 'Q*=='],
];

/** Characters a lenient decoder would take or skip. */
export const LENIENT_DECODER_TRAPS: Array<[what: string, text: string]> = [
  ['a character above U+00FF whose low byte is a base64 letter', 'QU\u0141D'],
  ['Latin-1 letters', 'QUJ\u00c4'],
  ['a byte whose low 7 bits are a letter', 'QU\u00c1D'],
  ['a NUL', 'Q\u0000JD'],
  ['a space in place of a letter', 'QU D'],
  ['base64url characters', 'QU-_'],
];
