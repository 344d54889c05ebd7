/**
 * Lines to events, as the WHATWG "server-sent events" parser reads them: `field: value` (one space
 * after the colon removed), a line that starts with a colon is a comment, and a blank line ends an
 * event. `id` and `retry` are read and ignored. Unlike a browser's EventSource, it says how many
 * `data` lines an event had: the protocol allows exactly one (docs/protocol.md, "Headers and events").
 */
import { MAX_STREAM_FILLER_CHARS, MAX_STREAM_LINE_CHARS } from '../constants.js';
import { SecurityError } from '../../errors.js';

/** How a data line starts, its one space included (formatEvent writes it so, and upstreams do). */
const DATA_PREFIX = 'data: ';
/** A data line without that space. */
const DATA_FIELD = 'data:';

/** One server-sent event, as {@link EventParser} dispatches it. */
export interface StreamEvent {
  /** The `event` field, or undefined when the event had none or an empty one (the standard's "message"). */
  name: string | undefined;
  /** The data, its lines joined with "\n" as the standard joins them. */
  data: string;
  /** How many `data:` lines it had (the protocol allows exactly one). */
  dataLines: number;
}

/** The limits of an {@link EventParser}: what a peer can make it hold or parse before it is refused. */
export interface EventLimits {
  /** An event whose data lines add up to more characters is refused as it grows. */
  readonly maxDataChars?: number;
  /** An event with more data lines is refused at the first line too many (a client's: 1, as the protocol allows). */
  readonly maxDataLines?: number;
  /** Lines that bring no data between two events (comments, blank lines, other fields), in characters with their line ends. */
  readonly maxFillerChars?: number;
  /**
   * An event without data (`event: ping`) is not dispatched, as the standard has it, and its lines
   * count as filler (a reader of upstreams). By default it is dispatched, for a reader that refuses it.
   */
  readonly skipEventsWithoutData?: boolean;
}

/**
 * Server-sent event lines to events: feed it lines (from {@link LineDecoder}), get each event as it
 * ends. What a peer sends beyond its limits is refused (SecurityError) as it comes, not once the
 * event is whole.
 */
export class EventParser {
  #name: string | undefined;
  #data: string[] = [];
  #fields = false;
  #dataChars = 0;
  #fillerChars = 0;
  readonly #maxDataChars: number;
  readonly #maxDataLines: number;
  readonly #maxFillerChars: number;
  readonly #skipEventsWithoutData: boolean;

  /** A parser for one stream, within `limits` (by default: any number of data lines up to 8 Mi characters, 64 KiB of filler). */
  constructor(limits: EventLimits = {}) {
    // A number was its one limit once: taken silently, it would leave every limit at its default.
    if (typeof limits !== 'object' || limits === null) throw new TypeError('EventParser takes its limits as { maxDataChars, maxDataLines, maxFillerChars }');
    this.#maxDataChars = limits.maxDataChars ?? MAX_STREAM_LINE_CHARS;
    this.#maxDataLines = limits.maxDataLines ?? Number.POSITIVE_INFINITY;
    this.#maxFillerChars = limits.maxFillerChars ?? MAX_STREAM_FILLER_CHARS;
    this.#skipEventsWithoutData = limits.skipEventsWithoutData === true;
  }

  /** Whether an event has begun that no blank line has ended yet (at a body's end: it never completes). */
  get pending(): boolean {
    return this.#fields;
  }

  /** The event `line` completes, if it is the blank line that ends one. */
  push(line: string): StreamEvent | undefined {
    // Nearly every line of a stream: read without splitting it into field and value.
    if (line.startsWith(DATA_PREFIX)) return this.#push(line.slice(DATA_PREFIX.length));
    if (line === '' && this.#fields) {
      if (this.#data.length > 0 || !this.#skipEventsWithoutData) return this.#dispatch();
      // No data: nothing dispatched, and its lines stay filler (pings without end are no way around the limit).
      this.#name = undefined;
      this.#fields = false;
    }
    // Data without the space (the standard allows it): held to the data's limit, not the filler's.
    if (line.startsWith(DATA_FIELD)) return this.#push(line.slice(DATA_FIELD.length));
    // A line that brings no data: a blank line that ends no event, a comment (a heartbeat), a field.
    this.#fillerChars += line.length + 1;
    if (this.#fillerChars > this.#maxFillerChars) throw new SecurityError(`malformed stream: over ${this.#maxFillerChars} characters of lines without data between two events`);
    if (line === '' || line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') {
      // Empty names the default type, as no `event` line does (WHATWG: the "message" event).
      this.#name = value === '' ? undefined : value;
      this.#fields = true;
    } else if (field === 'data') this.#push(value); // `data` alone: an empty line of data
    // `id`, `retry` and unknown fields: ignored, as the standard ignores unknown ones.
    return undefined;
  }

  #push(data: string): undefined {
    // As the data will be: its lines joined with "\n".
    this.#dataChars += data.length + (this.#data.length > 0 ? 1 : 0);
    if (this.#dataChars > this.#maxDataChars) throw new SecurityError(`malformed stream: an event over ${this.#maxDataChars} characters`);
    if (this.#data.length === this.#maxDataLines) throw new SecurityError(`malformed stream: an event with more than ${this.#maxDataLines} data line${this.#maxDataLines === 1 ? '' : 's'}`);
    this.#data.push(data);
    this.#fields = true;
    return undefined;
  }

  #dispatch(): StreamEvent {
    const data = this.#data.length === 1 ? this.#data[0]! : this.#data.join('\n');
    const event = { name: this.#name, data, dataLines: this.#data.length };
    this.#name = undefined;
    this.#data = [];
    this.#dataChars = 0;
    this.#fillerChars = 0;
    this.#fields = false;
    return event;
  }
}

/** Writes one event: an optional name, one data line, the blank line. `data` holds no line end. */
export function formatEvent(data: string, name?: string): string {
  return name === undefined ? `${DATA_PREFIX}${data}\n\n` : `event: ${name}\n${DATA_PREFIX}${data}\n\n`;
}
