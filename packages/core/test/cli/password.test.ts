/** The CLI's hidden password prompt, on a stand-in terminal: typed, Ctrl-D, the input's end. */
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { promptHidden } from '../../src/cli/password.js';

/** A stream that says it is a terminal, as a TTY's stdin does. */
const terminal = () => Object.assign(new PassThrough(), { isTTY: true });

describe('promptHidden', () => {
  beforeEach(() => void vi.spyOn(process.stderr, 'write').mockImplementation(() => true));
  afterEach(() => vi.restoreAllMocks());

  it('resolves to the line typed', async () => {
    const input = terminal();
    const typed = promptHidden('Password: ', input);
    input.write('hunter2 pass\r');
    await expect(typed).resolves.toBe('hunter2 pass');
  });

  it('Ctrl-D, or the end of the input, is an error, not an exit 0 with nothing done', async () => {
    const input = terminal();
    const typed = promptHidden('Password: ', input);
    input.write('\x04');
    await expect(typed).rejects.toThrow(new InvalidArgumentError('no password given (the input ended)'));
    const ended = terminal();
    const none = promptHidden('Password: ', ended);
    ended.end();
    await expect(none).rejects.toThrow(InvalidArgumentError);
  });

  it('refuses an input that is no terminal', () => {
    expect(() => promptHidden('Password: ', new PassThrough())).toThrow(/stdin is not a terminal/);
  });
});
