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
export async function promptHidden(question: string, input: TerminalInput = process.stdin): Promise<string> {
  const [typed] = await promptHiddenLines([question], input);
  return typed!;
}

type TerminalInput = NodeJS.ReadableStream & { isTTY?: boolean };

/**
 * Asks each question in turn (while `more` says so) and reads a line for each without echoing it,
 * on one interface: lines typed ahead (pasted at once) go to the next question, where an interface
 * of its own lost them.
 */
function promptHiddenLines(questions: readonly string[], input: TerminalInput, more: (answers: readonly string[]) => boolean = () => true): Promise<string[]> {
  if (!input.isTTY) {
    throw new InvalidArgumentError('a password is needed but stdin is not a terminal: name an environment variable with --password-env VAR');
  }
  // readline in terminal mode puts the TTY in raw mode and echoes to `output`: a sink echoes nothing.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input, output: muted, terminal: true });
  const answers: string[] = [];
  return new Promise((resolve, reject) => {
    let over = false;
    const end = (error?: InvalidArgumentError) => {
      if (over) return;
      over = true;
      rl.close();
      if (error) reject(error);
      else resolve(answers);
    };
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      end(new InvalidArgumentError('cancelled'));
    });
    // Ctrl-D, or the end of the input: else the process ended there, exit 0, nothing said or done.
    rl.on('close', () => {
      if (!over) process.stderr.write('\n');
      end(new InvalidArgumentError('no password given (the input ended)'));
    });
    const ask = () => {
      process.stderr.write(questions[answers.length]!);
      rl.question('', (typed) => {
        process.stderr.write('\n');
        answers.push(typed);
        if (answers.length === questions.length || !more(answers)) end();
        else ask();
      });
    };
    ask();
  });
}

/** A new password, typed twice; an empty one means "no encryption" (and is not asked again). */
export async function promptNewPassword(what: string, input: TerminalInput = process.stdin): Promise<string | undefined> {
  const [first, again] = await promptHiddenLines([`${what} (empty: store the key unencrypted): `, 'Repeat it: '], input, ([typed]) => typed !== '');
  if (first === '') return undefined;
  if (again !== first) throw new InvalidArgumentError('the passwords do not match');
  return first;
}
