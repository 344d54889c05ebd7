/**
 * JavaScript engines keep the subject of the last regular-expression match (`RegExp.input`, `$_`)
 * until the next match, wherever it ran: a plaintext matched by the library (a stream's lines, an
 * answer cut into words) stayed reachable after its request ended, until some other match ran.
 */
const EMPTY = /(?:)/;

/** Makes the engine's last match an empty one: call it after matching a plaintext. */
export function forgetLastMatch(): void {
  EMPTY.exec('');
}
