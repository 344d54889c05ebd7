/**
 * Every error class's `name` is its own, written out: a minifier renames classes (a bundled
 * `SecurityError` class is `h`), and `String(err)`, logs and `err.name` checks must still say
 * `SecurityError`. Simulated here by renaming each class as a minifier would.
 */
import { describe, expect, it } from 'vitest';
import * as errors from '../src/errors.js';
import { KeyFileChangedError } from '../src/keys/files/key-files.js';
import { KeyFileChangedError as BrowserKeyFileChangedError } from '../src/keys/files/browser.js';

const classes = [
  ...Object.entries(errors).filter((entry): entry is [string, typeof errors.NomyoError] => typeof entry[1] === 'function' && entry[1].prototype instanceof Error || entry[1] === errors.NomyoError),
  ['KeyFileChangedError', KeyFileChangedError],
  ['KeyFileChangedError', BrowserKeyFileChangedError],
] as Array<[string, new (message: string, init?: never) => Error]>;

describe('error names', () => {
  it('every class is found (17 in errors.ts, and the key file change in Node and browsers)', () => {
    expect(classes.length).toBe(19);
  });

  it.each(classes)('%s keeps its name when a minifier renames its class', (name, Cls) => {
    const original = Object.getOwnPropertyDescriptor(Cls, 'name')!;
    Object.defineProperty(Cls, 'name', { value: 'h' });
    try {
      const err = Cls.name === 'h' && new Cls('a message', undefined as never);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe(name);
      expect(String(err)).toBe(`${name}: ${(err as Error).message}`);
    } finally {
      Object.defineProperty(Cls, 'name', original);
    }
  });
});
