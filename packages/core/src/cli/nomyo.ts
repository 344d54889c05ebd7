#!/usr/bin/env node
/**
 * The `nomyo` command. Errors print their class, code and (already sanitized) message, and an error
 * sealed for the request the model server's code (`[context_length_exceeded]`); never a secret.
 */
import { APIError, NomyoError } from '../errors.js';
import { chat, CHAT_USAGE } from './chat.js';
import { keys, KEYS_USAGE } from './keys.js';
import { forTerminal } from './terminal.js';
import { packageVersion } from './version.js';

const USAGE = `nomyo: end-to-end encrypted chat completions

${CHAT_USAGE}

${KEYS_USAGE}

       nomyo --version   the version of @nomyo/core`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'chat':
      return chat(rest);
    case 'keys':
      return keys(rest);
    case '--version':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command: ${forTerminal(command)}\n${USAGE}\n`);
      return 2;
  }
}

// A reader that went away (`| head`): end quietly, as a writer killed by SIGPIPE does (128 + 13).
// Any other failure to write (a full disk): one line, where it can still go.
for (const output of [process.stdout, process.stderr]) {
  output.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && output === process.stdout) process.stderr.write(`error: cannot write the output (${err.code ?? 'error'})\n`);
    process.exit(err.code === 'EPIPE' ? 141 : 1);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const sealedCode = err instanceof APIError && err.error?.code != null ? ` [${err.error.code}]` : '';
    const text = err instanceof NomyoError ? `${err.name} (${err.code}): ${err.message}${sealedCode}` : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    process.stderr.write(`error: ${forTerminal(text)}\n`);
    process.exitCode = 1;
  },
);
