/**
 * EventParser on its own: events as the WHATWG parser reads them, and the limits that keep a peer
 * from making a reader hold or parse without end, each refused as it comes.
 */
import { describe, expect, it } from 'vitest';
import { SecurityError } from '../../../src/errors.js';
import { EventParser, type StreamEvent } from '../../../src/protocol/stream/events.js';

function eventsOf(parser: EventParser, lines: string[]): StreamEvent[] {
  const events: StreamEvent[] = [];
  for (const line of lines) {
    const event = parser.push(line);
    if (event) events.push(event);
  }
  return events;
}

describe('EventParser', () => {
  it('reads data with one space, none or two alike to the standard, names, comments and ignored fields', () => {
    const events = eventsOf(new EventParser(), ['data: a', '', 'data:b', '', 'data:  c', '', ': hi', 'id: 1', 'retry: 5', 'event: x', 'data: d', 'data: e', '', '', 'data', '']);
    expect(events).toEqual([
      { name: undefined, data: 'a', dataLines: 1 },
      { name: undefined, data: 'b', dataLines: 1 },
      { name: undefined, data: ' c', dataLines: 1 },
      { name: 'x', data: 'd\ne', dataLines: 2 },
      { name: undefined, data: '', dataLines: 1 },
    ]);
  });

  it('an empty event name is the default type, as no name (the standard\'s "message")', () => {
    expect(eventsOf(new EventParser(), ['event:', 'data: a', '', 'event: ', 'data: b', '', 'event: message', 'data: c', ''])).toEqual([
      { name: undefined, data: 'a', dataLines: 1 },
      { name: undefined, data: 'b', dataLines: 1 },
      { name: 'message', data: 'c', dataLines: 1 },
    ]);
  });

  it('skipEventsWithoutData: an event without data is not dispatched, and its lines count as filler; by default it is dispatched', () => {
    expect(eventsOf(new EventParser(), ['event: ping', ''])).toEqual([{ name: 'ping', data: '', dataLines: 0 }]);
    expect(eventsOf(new EventParser({ skipEventsWithoutData: true }), ['event: ping', '', 'data: a', ''])).toEqual([{ name: undefined, data: 'a', dataLines: 1 }]);
    const pings = new EventParser({ skipEventsWithoutData: true, maxFillerChars: 100 });
    expect(() => eventsOf(pings, Array.from({ length: 20 }, (_, i) => (i % 2 ? '' : 'event: ping')))).toThrow(SecurityError);
  });

  it('takes data up to its limit exactly, joined as it will be, and refuses one character more', () => {
    expect(eventsOf(new EventParser({ maxDataChars: 9 }), ['data: abcd', 'data: edcb', ''])).toEqual([{ name: undefined, data: 'abcd\nedcb', dataLines: 2 }]);
    expect(() => eventsOf(new EventParser({ maxDataChars: 9 }), ['data: abcd', 'data: edcba'])).toThrow(/an event over 9 characters/);
  });

  it('refuses a data line too many at that line', () => {
    const parser = new EventParser({ maxDataLines: 1 });
    expect(parser.push('data: one')).toBeUndefined();
    expect(() => parser.push('data: two')).toThrow(SecurityError);
  });

  it('counts the lines without data between two events, and starts again at each event', () => {
    const parser = new EventParser({ maxFillerChars: 20 });
    // 20 characters with their line ends, the limit exactly, then an event: the count starts again.
    expect(eventsOf(parser, [': 1234567', 'id: 12345', 'data: x', ''])).toHaveLength(1);
    expect(eventsOf(parser, [': 1234', '', '', 'event: a', 'data: y', ''])).toHaveLength(1);
    expect(() => eventsOf(parser, [': 1234567890', '', '', 'id: 12345'])).toThrow(/over 20 characters of lines without data between two events/);
  });

  it('counts data without its space as data, not as lines without data', () => {
    const parser = new EventParser({ maxFillerChars: 20 });
    expect(eventsOf(parser, [`data:${'x'.repeat(100)}`, ''])).toEqual([{ name: undefined, data: 'x'.repeat(100), dataLines: 1 }]);
  });

  it('takes its limits as an object: a number, as it once took, is refused rather than ignored', () => {
    expect(() => new EventParser(10 as never)).toThrow(TypeError);
  });
});
