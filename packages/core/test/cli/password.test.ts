/** The CLI's hidden password prompt, on a stand-in terminal: typed, Ctrl-D, the input's end. */
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { promptHidden, promptNewPassword } from '../../src/cli/password.js';

/** A stream that says it is a terminal, as a TTY's stdin does. */
const terminal = () => Object.assign(new PassThrough(), { isTTY: true });

// The prompts' questions go to stderr: kept out of the test's output.
beforeEach(() => void vi.spyOn(process.stderr, 'write').mockImplementation(() => true));
afterEach(() => vi.restoreAllMocks());

describe('promptHidden', () => {
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

  it('refuses an input that is no terminal', async () => {
    await expect(promptHidden('Password: ', new PassThrough())).rejects.toThrow(/stdin is not a terminal/);
  });
});

describe('promptNewPassword', () => {
  it('takes both lines pasted at once (typed ahead of "Repeat it:"), which hung before', async () => {
    const input = terminal();
    const password = promptNewPassword('New password', input);
    input.write('hunter2pass\rhunter2pass\r');
    await expect(password).resolves.toBe('hunter2pass');
  });

  it('an empty first line asks nothing more: no encryption', async () => {
    const input = terminal();
    const password = promptNewPassword('New password', input);
    input.write('\r');
    await expect(password).resolves.toBeUndefined();
  });

  it('two different lines: refused', async () => {
    const input = terminal();
    const password = promptNewPassword('New password', input);
    input.write('one\rtwo\r');
    await expect(password).rejects.toThrow('the passwords do not match');
  });
});
