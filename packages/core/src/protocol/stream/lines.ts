/**
 * Bytes to lines, as server-sent events read them: a line ends at LF, CRLF or CR, and a CRLF split
 * across two network chunks is one line end. The first layer of reading a stream (bytes → lines →
 * events → records → chunks), as openai-node's line decoder is. Only each new chunk is searched for
 * line ends, so a long line arriving a few bytes at a time costs no more than arriving whole.
 */
import { MAX_STREAM_LINE_CHARS } from '../constants.js';
import { SecurityError } from '../../errors.js';
import { forgetLastMatch } from '../../memory/last-match.js';

const LINE_END = /\r\n|\r|\n/g;

/**
 * How much of a network chunk is decoded at a time. A chunk can bring hundreds of events at once (64
 * KiB from a fast upstream); decoded whole, all their lines would wait in memory while a slow reader
 * takes them one by one, long enough for the garbage collector to keep them, and grow its heap.
 */
export const LINE_SLICE_BYTES = 4 * 1024;

/**
 * A stream's bytes to lines: {@link feed} it each network chunk, then take the lines it completes
 * one at a time with {@link next} (or all at once with {@link push}). A chunk is decoded a slice at
 * a time, as its lines are asked for: it is read where it is, so it must not change until they are.
 */
export class LineDecoder {
  readonly #text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
  /** The start of a line whose end has not come yet, in parts. */
  #pending: string[] = [];
  /** The last slice ended in CR: a LF at the start of the next one belongs to it. */
  #afterCr = false;
  #pendingChars = 0;
  /** The chunk fed last, and how far it has been decoded. */
  #chunk: Uint8Array = new Uint8Array(0);
  #chunkAt = 0;
  /** The lines of the slice decoded last, and how many of them were taken. */
  #lines: string[] = [];
  #lineAt = 0;

  /**
   * A decoder for one stream.
   * @param maxLineChars a longer line is refused (SecurityError) before it is all held: a peer cannot
   * make us buffer without bound. A reader may lower or raise it between chunks (while only short
   * lines are valid, say).
   */
  constructor(public maxLineChars = MAX_STREAM_LINE_CHARS) {}

  /** Takes the next network chunk, once every line of the one before has been taken. */
  feed(chunk: Uint8Array): void {
    if (this.#lineAt < this.#lines.length || this.#chunkAt < this.#chunk.length) throw new Error('LineDecoder: a chunk fed before the lines of the last one were taken');
    this.#chunk = chunk;
    this.#chunkAt = 0;
  }

  /** The next line the chunks fed so far complete (without its line end), or undefined when they complete no more. */
  next(): string | undefined {
    while (this.#lineAt === this.#lines.length) {
      if (this.#chunkAt === this.#chunk.length) return undefined;
      const slice = this.#chunk.subarray(this.#chunkAt, this.#chunkAt + LINE_SLICE_BYTES);
      this.#chunkAt += slice.length;
      this.#lines = this.#split(slice);
      this.#lineAt = 0;
    }
    return this.#lines[this.#lineAt++];
  }

  /** The lines that `chunk` completes (each without its line end), all at once. */
  push(chunk: Uint8Array): string[] {
    this.feed(chunk);
    const lines: string[] = [];
    for (let line = this.next(); line !== undefined; line = this.next()) lines.push(line);
    return lines;
  }

  #split(bytes: Uint8Array): string[] {
    let text = this.#text.decode(bytes, { stream: true });
    if (this.#afterCr && text.startsWith('\n')) text = text.slice(1);
    this.#afterCr = false;
    // Streams end their lines with LF alone, nearly all: those are found with indexOf, without the
    // regular expression. With the event parser's path for `data: ` lines, a network piece's lines
    // and events took 38-42 µs instead of 45-51 in a process back from idle, as every token finds
    // the router and the client (docs/performance.md).
    if (!text.includes('\r')) return this.#linesOf(text);
    LINE_END.lastIndex = 0;
    try {
      return this.#linesOf(text, LINE_END);
    } finally {
      forgetLastMatch(); // else the engine's last match keeps this plaintext
    }
  }

  /** The lines `text` ends, each found with `ends` (any line end), else as LF alone. */
  #linesOf(text: string, ends?: RegExp): string[] {
    const lines: string[] = [];
    let from = 0;
    for (;;) {
      let at: number;
      let length = 1;
      if (ends) {
        const m = ends.exec(text);
        if (m === null) break;
        at = m.index;
        length = m[0].length;
        // A CR at the very end may be the first half of a CRLF still to come.
        if (m[0] === '\r' && at === text.length - 1) this.#afterCr = true;
      } else {
        at = text.indexOf('\n', from);
        if (at === -1) break;
      }
      lines.push(this.#line(text.slice(from, at)));
      from = at + length;
    }
    if (from < text.length) this.#hold(text.slice(from));
    return lines;
  }

  /** The line that `part` ends: the parts held before it, if any, and it. */
  #line(part: string): string {
    if (this.#pending.length === 0) {
      if (part.length > this.maxLineChars) throw this.#tooLong();
      return part;
    }
    this.#hold(part);
    const line = this.#pending.join('');
    this.#pending = [];
    this.#pendingChars = 0;
    return line;
  }

  #hold(part: string): void {
    this.#pendingChars += part.length;
    if (this.#pendingChars > this.maxLineChars) throw this.#tooLong();
    this.#pending.push(part);
  }

  #tooLong(): SecurityError {
    return new SecurityError(`malformed stream: a line over ${this.maxLineChars} characters`);
  }

  /** What is left when the stream ends: a last line without a line end, which never completes an event. */
  end(): string | undefined {
    const rest = this.#pending.join('') + this.#text.decode();
    this.#pending = [];
    this.#pendingChars = 0;
    return rest === '' ? undefined : rest;
  }
}
