/**
 * Bytes to lines, as server-sent events read them: a line ends at LF, CRLF or CR, and a CRLF split
 * across two network chunks is one line end. The first layer of reading a stream (bytes → lines →
 * events → records → chunks), as openai-node's line decoder is. Only each new chunk is searched for
 * line ends, so a long line arriving a few bytes at a time costs no more than arriving whole.
 */
import { MAX_STREAM_LINE_CHARS } from '../constants.js';
import { SecurityError } from '../../errors.js';

const LINE_END = /\r\n|\r|\n/g;

/** A stream's bytes to lines: feed it each network chunk, get the lines it completes. */
export class LineDecoder {
  readonly #text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  /** The start of a line whose end has not come yet, in parts. */
  #pending: string[] = [];
  /** The last chunk ended in CR: a LF at the start of the next one belongs to it. */
  #afterCr = false;
  #pendingChars = 0;

  /**
   * A decoder for one stream.
   * @param maxLineChars a longer line is refused (SecurityError) before it is all held: a peer cannot make us buffer without bound.
   */
  constructor(private readonly maxLineChars = MAX_STREAM_LINE_CHARS) {}

  /** The lines that `chunk` completes (each without its line end). */
  push(chunk: Uint8Array): string[] {
    let text = this.#text.decode(chunk, { stream: true });
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = false;
    const lines: string[] = [];
    let from = 0;
    LINE_END.lastIndex = 0;
    for (let m = LINE_END.exec(text); m !== null; m = LINE_END.exec(text)) {
      // A CR at the very end may be the first half of a CRLF still to come.
      if (m[0] === '\r' && m.index === text.length - 1) this.#afterCr = true;
      this.#hold(text.slice(from, m.index));
      lines.push(this.#pending.join(''));
      this.#pending = [];
      this.#pendingChars = 0;
      from = m.index + m[0].length;
    }
    if (from < text.length) this.#hold(text.slice(from));
    return lines;
  }

  #hold(part: string): void {
    this.#pendingChars += part.length;
    if (this.#pendingChars > this.maxLineChars) throw new SecurityError(`malformed stream: a line over ${this.maxLineChars} characters`);
    this.#pending.push(part);
  }

  /** What is left when the stream ends: a last line without a line end, which never completes an event. */
  end(): string | undefined {
    const rest = this.#pending.join('') + this.#text.decode();
    this.#pending = [];
    this.#pendingChars = 0;
    return rest === '' ? undefined : rest;
  }
}
