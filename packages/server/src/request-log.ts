/** Request numbering, per-path attempt counts and the optional request log behind `server.requests`. */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestRecord } from './types.js';

export interface Arrival {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
  bodyLength: number;
}

export class RequestLog {
  readonly records: RequestRecord[] = [];
  #seq = 0;
  #attempts = new Map<string, number>();

  /** `keep`: false keeps nothing, true everything, a number the latest N. */
  constructor(private readonly keep: boolean | number) {}

  /** Whether records are kept: then a streamed body is copied as it is written, for the record. */
  get keeping(): boolean {
    return this.keep !== false;
  }

  add(arrival: Arrival): RequestRecord {
    const key = `${arrival.method} ${arrival.path}`;
    const attempt = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, attempt);
    const record: RequestRecord = { ...arrival, seq: ++this.#seq, attempt, receivedAt: Date.now() };
    if (this.keep !== false) {
      this.records.push(record);
      if (typeof this.keep === 'number' && this.records.length > this.keep) this.records.splice(0, this.records.length - this.keep);
    }
    return record;
  }

  clear(): void {
    this.records.length = 0;
    this.#seq = 0;
    this.#attempts.clear();
  }
}
