/**
 * Key-file passwords for the CLI: from an environment variable named on the command line, or a
 * prompt that does not echo. Never from an argument: arguments are visible to every user in `ps`
 * and land in shell history.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';

/**
 * The value of the environment variable `name` (given with `flag`), which must be set. The name is
 * not repeated when it is not: a password typed in its place would reach the terminal and its logs.
 */
export function passwordFromEnv(name: string, flag: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new InvalidArgumentError(`the environment variable named by ${flag} is not set (its name is not repeated here: it may be a password typed in its place)`);
  return value;
}

/** Reads a line from the terminal (`input`: stdin) without echoing it. */
export function promptHidden(question: string, input: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<string> {
  if (!input.isTTY) {
    throw new InvalidArgumentError('a password is needed but stdin is not a terminal: name an environment variable with --password-env VAR');
  }
  process.stderr.write(question);
  // readline in terminal mode puts the TTY in raw mode and echoes to `output`: a sink echoes nothing.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input, output: muted, terminal: true });
  return new Promise((resolve, reject) => {
    let answered = false;
    const end = (error?: InvalidArgumentError) => {
      if (answered) return;
      answered = true;
      rl.close();
      process.stderr.write('\n');
      if (error) reject(error);
    };
    rl.on('SIGINT', () => end(new InvalidArgumentError('cancelled')));
    // Ctrl-D, or the end of the input: else the process ended there, exit 0, nothing said or done.
    rl.on('close', () => end(new InvalidArgumentError('no password given (the input ended)')));
    rl.question('', (typed) => {
      end();
      resolve(typed);
    });
  });
}

/** A new password, typed twice; an empty one means "no encryption". */
export async function promptNewPassword(what: string): Promise<string | undefined> {
  const first = await promptHidden(`${what} (empty: store the key unencrypted): `);
  if (first === '') return undefined;
  const again = await promptHidden('Repeat it: ');
  if (again !== first) throw new InvalidArgumentError('the passwords do not match');
  return first;
}
