/** `nomyo chat "message"`: one encrypted chat completion from the command line, its tokens printed as they arrive. */
import { constants as osConstants } from 'node:os';
import { parseArgs } from 'node:util';
import { SecureChatCompletion } from '../client/secure-chat-completion.js';
import type { ProtocolOption } from '../keys/protocol-choice.js';
import { MAX_REQUEST_PLAINTEXT_BYTES, V2_STREAM_ALGORITHM } from '../protocol/constants.js';
import { MAX_TIMER_MS } from '../env.js';
import { isSecurityTier, SECURITY_TIER_RULE } from '../protocol/request-headers.js';
import { InvalidArgumentError, KeyPasswordError, NomyoError } from '../errors.js';
import { PLAIN_HTTP_RISK, inFlagTerms, plainHttpRefused, refusedArguments } from './arguments.js';
import { TerminalText, forTerminal, jsonForTerminal } from './terminal.js';

export const CHAT_USAGE = `usage: nomyo chat "message" [--url URL] [--model MODEL] [--tier standard|high|maximum]
                  [--protocol auto|1|2] [--api-key KEY] [--allow-http] [--system TEXT] [--no-stream]
                  [--fingerprint FP]... [--dir DIR] [--timeout SECONDS] [--max-retries N] [--json] [--quiet]
  A message of - is read from stdin (UTF-8), out of \`ps\` and shell history, where other users
  can see a command's arguments; a message that starts with - goes after --.
  URL defaults to NOMYO_SERVER_URL, the API key to NOMYO_API_KEY (better than --api-key: other
  users of the machine can read a command line), MODEL to Qwen/Qwen3-0.6B. --protocol: auto
  (default) sends v2 where the router advertises it; 2 refuses a router that does not; 1 always
  sends v1. --fingerprint pins the router's key (repeatable: any of them); --dir keeps the router's
  key in a key directory's store (trusted on first use, or as \`nomyo keys trust\` put it there) and
  refuses another; its key files' password from NOMYO_KEY_PASSWORD.
  --timeout: each attempt's limit (default 120; a stream's, until its first event), --max-retries
  how many more attempts a 429, a 503 or a connection failure gets (default 2).
  The answer is printed as it arrives (streamed); --no-stream waits for it whole. --json prints the
  whole completion as JSON (it does not stream).`;

/** The message from stdin, UTF-8, at most what a request may carry; its bytes zeroed once decoded. */
async function readStdin(): Promise<string> {
  const pieces: Buffer[] = [];
  let size = 0;
  try {
    for await (const piece of process.stdin as AsyncIterable<Buffer>) {
      pieces.push(piece);
      size += piece.length;
      if (size > MAX_REQUEST_PLAINTEXT_BYTES) throw new InvalidArgumentError(`the message on stdin is over ${MAX_REQUEST_PLAINTEXT_BYTES} bytes`);
    }
    const bytes = Buffer.concat(pieces);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new InvalidArgumentError('the message on stdin is not UTF-8');
    } finally {
      bytes.fill(0);
    }
  } finally {
    for (const piece of pieces) piece.fill(0);
  }
}

/** `--protocol` as the client option; anything else is left for the client to refuse. */
function protocolOption(value: string | undefined): ProtocolOption | undefined {
  if (value === undefined || value === 'auto') return value;
  return value === '1' || value === '2' ? (Number(value) as 1 | 2) : (value as ProtocolOption);
}

const OPTIONS = {
  url: { type: 'string' },
  model: { type: 'string', default: 'Qwen/Qwen3-0.6B' },
  tier: { type: 'string' },
  protocol: { type: 'string' },
  'api-key': { type: 'string' },
  'allow-http': { type: 'boolean', default: false },
  system: { type: 'string' },
  'no-stream': { type: 'boolean', default: false },
  fingerprint: { type: 'string', multiple: true },
  dir: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  'max-retries': { type: 'string' },
} as const;

/** The client options the flags set, as the library's errors name them. */
const FLAGS: Readonly<Record<string, string>> = {
  serverKeyFingerprint: '--fingerprint',
  keyDir: '--dir',
  protocol: '--protocol',
  apiKey: '--api-key',
  allowHttp: '--allow-http',
  maxRetries: '--max-retries',
};

/**
 * A flag's value the client refuses as it is made (it checks its options, and sends nothing), as a
 * usage error in the flag's terms (exit 2); undefined for an error that is not the library's.
 */
function refusedFlag(err: unknown): string | undefined {
  return err instanceof NomyoError ? `nomyo chat: ${forTerminal(inFlagTerms(err.message, FLAGS))}\n${CHAT_USAGE}\n` : undefined;
}

export async function chat(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    process.stderr.write(`nomyo chat: ${refusedArguments(err)}\n${CHAT_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  let message: string;
  try {
    message = positionals.length === 1 && positionals[0] === '-' ? await readStdin() : positionals.join(' ');
  } catch (err) {
    if (!(err instanceof NomyoError)) throw err;
    process.stderr.write(`nomyo chat: ${err.message}\n`);
    return 2;
  }
  if (!message) {
    process.stderr.write(`nomyo chat: no message\n${CHAT_USAGE}\n`);
    return 2;
  }
  const plainHttp = plainHttpRefused(values.url ?? process.env.NOMYO_SERVER_URL, values['allow-http'], PLAIN_HTTP_RISK.apiKey);
  if (plainHttp) {
    process.stderr.write(`nomyo chat: ${plainHttp}\n`);
    return 2;
  }
  const timeout = values.timeout === undefined ? undefined : /^\d+(\.\d+)?$/.test(values.timeout) ? Math.round(Number(values.timeout) * 1000) : NaN;
  if (timeout !== undefined && !(timeout > 0 && timeout <= MAX_TIMER_MS)) {
    process.stderr.write(`nomyo chat: --timeout must be a number of seconds above 0, at most ${Math.floor(MAX_TIMER_MS / 1000)}\n${CHAT_USAGE}\n`);
    return 2;
  }
  if (values['max-retries'] !== undefined && !/^\d+$/.test(values['max-retries'])) {
    process.stderr.write(`nomyo chat: --max-retries must be a whole number\n${CHAT_USAGE}\n`);
    return 2;
  }
  if (values.tier !== undefined && !isSecurityTier(values.tier)) {
    process.stderr.write(`nomyo chat: --tier must be ${SECURITY_TIER_RULE}\n${CHAT_USAGE}\n`);
    return 2;
  }
  let client: SecureChatCompletion;
  try {
    client = new SecureChatCompletion({
      ...(values.url ? { baseUrl: values.url } : {}),
      ...(values['api-key'] ? { apiKey: values['api-key'] } : {}),
      allowHttp: values['allow-http'],
      ...(values.protocol !== undefined ? { protocol: protocolOption(values.protocol) } : {}),
      ...(values.fingerprint ? { serverKeyFingerprint: values.fingerprint } : {}),
      ...(values.dir !== undefined ? { keyDir: values.dir } : {}),
      ...(timeout !== undefined ? { timeout } : {}),
      ...(values['max-retries'] !== undefined ? { maxRetries: Number(values['max-retries']) } : {}),
      onWarning: (w) => values.quiet || process.stderr.write(`warning: ${w}\n`),
    });
  } catch (err) {
    const usage = refusedFlag(err);
    if (usage === undefined) throw err;
    process.stderr.write(usage);
    return 2;
  }
  try {
    const messages = [...(values.system ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: message }];
    const params = { model: values.model, messages, ...(values.tier ? { security_tier: values.tier } : {}) };
    let metadata: { protocol: 1 | 2; encryption_algorithm: string };
    if (values.json || values['no-stream']) {
      const completion = await client.create(params);
      const content = completion.choices[0]?.message.content ?? '';
      process.stdout.write(values.json ? `${jsonForTerminal(completion)}\n` : `${forTerminal(content)}\n`);
      metadata = completion._metadata;
    } else {
      const stream = await client.create({ ...params, stream: true });
      const out = new TerminalText((text) => process.stdout.write(text));
      // Ctrl-C or a TERM while tokens print: the line ends too, then the usual 128 + signal.
      const interrupted = (signal: 'SIGINT' | 'SIGTERM') => () => {
        out.end();
        process.stdout.write('\n');
        process.exit(128 + osConstants.signals[signal]);
      };
      const onInt = interrupted('SIGINT');
      const onTerm = interrupted('SIGTERM');
      process.once('SIGINT', onInt).once('SIGTERM', onTerm);
      try {
        for await (const chunk of stream) out.write(chunk.choices[0]?.delta.content ?? '');
      } finally {
        process.off('SIGINT', onInt).off('SIGTERM', onTerm);
        // The answer's line ends however the stream did: an error goes on a line of its own.
        out.end();
        process.stdout.write('\n');
      }
      metadata = stream._metadata;
    }
    if (!values.quiet) {
      const { protocol, encryption_algorithm: algorithm } = metadata;
      const [serverKey, memory] = await Promise.all([client.client.fetchServerPublicKey(), client.client.memoryProtection()]);
      // v2 used no client key pair: asking for one here would make one just to print it.
      const clientKey = protocol === 2 ? 'no client key pair (protocol 2 needs none)' : `client key RSA-${(await client.client.keyPair()).bits}`;
      const how =
        algorithm === V2_STREAM_ALGORITHM
          ? 'AES-256-GCM bound to its headers, RSA-OAEP-SHA256, streamed records keyed with HKDF-SHA256'
          : protocol === 2
            ? 'AES-256-GCM bound to its headers, RSA-OAEP-SHA256, answer key HKDF-SHA256'
            : 'AES-256-GCM, RSA-OAEP-SHA256';
      process.stderr.write(
        `protected: protocol ${protocol}, ${algorithm} (${how}), router key RSA-${serverKey.bits} sha256:${serverKey.fingerprint}, ` +
          `${clientKey}, memory: ${memory.kind} (${memory.reason})\n`,
      );
    }
    return 0;
  } catch (err) {
    // The library's text names no source of the password: the command's only one is the environment.
    if (err instanceof KeyPasswordError) throw new KeyPasswordError(`${err.message} (nomyo chat reads it from NOMYO_KEY_PASSWORD)`, { cause: err });
    throw err;
  } finally {
    await client.dispose();
  }
}
