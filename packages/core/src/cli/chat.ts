/** `nomyo chat "message"`: one encrypted chat completion from the command line. */
import { parseArgs } from 'node:util';
import { SecureChatCompletion } from '../client/secure-chat-completion.js';
import type { SecurityTier } from '../protocol/constants.js';
import { forTerminal, jsonForTerminal } from './terminal.js';

export const CHAT_USAGE = `usage: nomyo chat "message" [--url URL] [--model MODEL] [--tier standard|high|maximum]
                  [--api-key KEY] [--allow-http] [--system TEXT] [--json] [--quiet]
  URL defaults to NOMYO_SERVER_URL, the API key to NOMYO_API_KEY.`;

export async function chat(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      model: { type: 'string', default: 'Qwen/Qwen3-0.6B' },
      tier: { type: 'string' },
      'api-key': { type: 'string' },
      'allow-http': { type: 'boolean', default: false },
      system: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  });
  const message = positionals.join(' ');
  if (!message) {
    process.stderr.write(`${CHAT_USAGE}\n`);
    return 2;
  }
  const client = new SecureChatCompletion({
    ...(values.url ? { baseUrl: values.url } : {}),
    ...(values['api-key'] ? { apiKey: values['api-key'] } : {}),
    allowHttp: values['allow-http'],
    onWarning: (w) => values.quiet || process.stderr.write(`warning: ${w}\n`),
  });
  try {
    const messages = [...(values.system ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: message }];
    const completion = await client.create({
      model: values.model,
      messages,
      ...(values.tier ? { security_tier: values.tier as SecurityTier } : {}),
    });
    if (values.json) {
      process.stdout.write(`${jsonForTerminal(completion)}\n`);
    } else {
      const content = completion.choices[0]?.message.content ?? '';
      process.stdout.write(`${forTerminal(content)}\n`);
    }
    if (!values.quiet) {
      const [serverKey, keys, memory] = await Promise.all([client.client.fetchServerPublicKey(), client.client.keyPair(), client.client.memoryProtection()]);
      process.stderr.write(
        `protected: ${completion._metadata.encryption_algorithm} (AES-256-GCM, RSA-OAEP-SHA256), router key RSA-${serverKey.bits} sha256:${serverKey.fingerprint}, ` +
          `client key RSA-${keys.bits}, memory: ${memory.kind} (${memory.reason})\n`,
      );
    }
    return 0;
  } finally {
    await client.dispose();
  }
}
