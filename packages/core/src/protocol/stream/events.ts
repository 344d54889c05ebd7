/**
 * Lines to events, as the WHATWG "server-sent events" parser reads them: `field: value` (one space
 * after the colon removed), a line that starts with a colon is a comment, and a blank line ends an
 * event. `id` and `retry` are read and ignored. Unlike a browser's EventSource, it says how many
 * `data` lines an event had: the protocol allows exactly one (docs/protocol.md, "Headers and events").
 */
import { MAX_STREAM_LINE_CHARS } from '../constants.js';
import { SecurityError } from '../../errors.js';

/** One server-sent event, as {@link EventParser} dispatches it. */
export interface StreamEvent {
  /** The `event` field, or undefined when the event had none. */
  name: string | undefined;
  /** The data, its lines joined with "\n" as the standard joins them. */
  data: string;
  /** How many `data:` lines it had (the protocol allows exactly one). */
  dataLines: number;
}

/** Server-sent event lines to events: feed it lines (from {@link LineDecoder}), get each event as it ends. */
export class EventParser {
  #name: string | undefined;
  #data: string[] = [];
  #fields = false;
  #dataChars = 0;

  /**
   * A parser for one stream.
   * @param maxDataChars an event whose data lines add up to more is refused (SecurityError) as it grows.
   */
  constructor(private readonly maxDataChars = MAX_STREAM_LINE_CHARS) {}

  /** Whether an event has begun that no blank line has ended yet (at a body's end: it never completes). */
  get pending(): boolean {
    return this.#fields;
  }

  /** The event `line` completes, if it is the blank line that ends one. */
  push(line: string): StreamEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined; // a comment: a heartbeat
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') {
      this.#name = value;
      this.#fields = true;
    } else if (field === 'data') {
      this.#dataChars += value.length + 1;
      if (this.#dataChars > this.maxDataChars) throw new SecurityError(`malformed stream: an event over ${this.maxDataChars} characters`);
      this.#data.push(value);
      this.#fields = true;
    }
    // `id`, `retry` and unknown fields: ignored, as the standard ignores unknown ones.
    return undefined;
  }

  #dispatch(): StreamEvent | undefined {
    const event = this.#fields ? { name: this.#name, data: this.#data.join('\n'), dataLines: this.#data.length } : undefined;
    this.#name = undefined;
    this.#data = [];
    this.#dataChars = 0;
    this.#fields = false;
    return event;
  }
}

/** Writes one event: an optional name, one data line, the blank line. `data` holds no line end. */
export function formatEvent(data: string, name?: string): string {
  return name === undefined ? `data: ${data}\n\n` : `event: ${name}\ndata: ${data}\n\n`;
}
