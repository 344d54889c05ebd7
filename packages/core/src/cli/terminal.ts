/**
 * Text that came from the network or a model, made safe to print: no escape sequences, no controls
 * but newline and tab, no invisible format characters (bidi overrides, tag characters that hide
 * text) but the joiners and the soft hyphen that scripts and emoji are written with (U+200C, U+200D,
 * U+00AD).
 */
export function forTerminal(text: string): string {
  return text
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[^\P{Cc}\n\t]|[^\P{Cf}\u00ad\u200c\u200d]|[\p{Zl}\p{Zp}]/gu, '');
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
 * {@link forTerminal}. What ends a piece but may begin something the next one ends is held back: a
 * CR (with an LF at the start of the next it is one line end, not two), and the first half of a
 * character outside the BMP (an emoji cut between two chunks prints whole, not as two U+FFFD).
 */
export class TerminalText {
  #held = '';

  constructor(private readonly print: (text: string) => void) {}

  write(piece: string): void {
    let text = this.#held + piece;
    const last = text.charCodeAt(text.length - 1);
    const hold = last === 0x0d || (last >= 0xd800 && last <= 0xdbff) ? 1 : 0;
    this.#held = text.slice(text.length - hold);
    text = text.slice(0, text.length - hold);
    if (text !== '') this.print(forTerminal(text));
  }

  end(): void {
    if (this.#held !== '') this.print(forTerminal(this.#held));
    this.#held = '';
  }
}
