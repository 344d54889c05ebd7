/**
 * Part 5 of `pnpm bench stream` (see stream.mjs): wire. The router's SSE bytes per record against
 * the upstream's bytes per plaintext event, over one stream of one-word chunks.
 */
import { benchModel } from './sse-upstream.mjs';
import { fixed as f } from './stats.mjs';
import { MESSAGES } from './stream-clients.mjs';

/** A stream of 1,000 one-word chunks through the router: its record bytes against the upstream's event bytes. */
export async function wire(nomyo, router, upstream) {
  await router.ask('reset');
  for await (const _chunk of await nomyo.create({ model: benchModel(1000), messages: MESSAGES, stream: true }));
  const sent = await router.ask('stats');
  const plain = await upstream.ask('last');
  return { records: sent.records, recordBytes: sent.bytes / sent.records, frameBytes: sent.otherBytes, events: plain.events, eventBytes: plain.bytes / plain.events };
}

export function printWire(w) {
  const ratio = w.recordBytes / w.eventBytes;
  console.log(`\n5. Wire, ${w.records} one-word chunks: ${f(w.recordBytes, 1)} bytes per record event ("data: " + the base64 of the padded record and its tag) ` +
    `against ${f(w.eventBytes, 1)} per plaintext event as the upstream wrote it ("data: {chunk JSON}"); bodies only, no chunked framing; ` +
    `and ${w.frameBytes} bytes of header event and final record per stream`);
  return [['wire bytes per record / plaintext event', `${f(ratio)}x`, '≤ 2.2x', ratio <= 2.2]];
}
