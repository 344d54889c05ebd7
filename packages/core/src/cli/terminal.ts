/** Text that came from the network or a model, made safe to print: no escape sequences, no controls but newline and tab. */
export function forTerminal(text: string): string {
  return text
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[^\P{Cc}\n\t]|[\p{Cf}\p{Zl}\p{Zp}]/gu, '');
}

/**
 * JSON for a terminal: JSON.stringify escapes only U+0000-U+001F, so C1 controls (a raw CSI is
 * U+009B), DEL, bidi overrides and line separators from a model's completion are escaped here too.
 */
export function jsonForTerminal(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\p{Cf}\u2028\u2029]/gu, (c) =>
    // Escape each UTF-16 unit: a format character above U+FFFF is a surrogate pair.
    Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

/**
 * Text printed piece by piece as it arrives (a streamed answer), each piece made safe with
 * {@link forTerminal}. A CR at the end of a piece is held back: with an LF at the start of the next
 * it is one line end, not two.
 */
export class TerminalText {
  #heldCr = false;

  constructor(private readonly print: (text: string) => void) {}

  write(piece: string): void {
    let text = this.#heldCr ? `\r${piece}` : piece;
    this.#heldCr = text.endsWith('\r');
    if (this.#heldCr) text = text.slice(0, -1);
    if (text !== '') this.print(forTerminal(text));
  }

  end(): void {
    if (this.#heldCr) this.print('\n');
    this.#heldCr = false;
  }
}
