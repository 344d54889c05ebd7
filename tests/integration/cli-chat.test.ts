import { execFile, spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamError, type NomyoServer } from '@nomyo/server';
import { startTestServer } from './support.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../node_modules/@nomyo/core/dist/cli/nomyo.js', import.meta.url));
const nomyo = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [CLI, ...args], { env: { ...process.env, NOMYO_SERVER_URL: '', NOMYO_API_KEY: '', ...env } }).catch(
    (err: { code: number; stdout: string; stderr: string }) => ({ ...err, failed: true }),
  );

describe('nomyo chat', () => {
  let server: NomyoServer;
  beforeAll(async () => {
    server = await startTestServer({
      apiKey: 'sk-cli',
      // A model that tries to drive the terminal: the CLI must print it defanged.
      model: (req) => {
        const last = String((req.messages.at(-1) as { content: string }).content);
        if (last === 'too long') throw new UpstreamError(400, 'generic', { message: 'the context window is full', type: 'invalid_request_error', code: 'context_length_exceeded', status: 400 });
        const content = last === 'hostile' ? 'ok\x1b]0;owned\x07\x1b[2Jdone\u202e\u009b2J' : `echo: ${last}`;
        return { id: 'x', object: 'chat.completion', created: 1, model: req.model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] };
      },
    });
  });
  afterAll(() => server.close());

  it.each([
    { args: [], protocol: 2, algorithm: 'aes256gcm-hkdf-sha256', clientKey: /no client key pair \(protocol 2 needs none\)/ },
    { args: ['--protocol', '2'], protocol: 2, algorithm: 'aes256gcm-hkdf-sha256', clientKey: /no client key pair/ },
    { args: ['--protocol', '1'], protocol: 1, algorithm: 'hybrid-aes256-rsa4096', clientKey: /client key RSA-4096/ },
  ])('sends one encrypted completion and says what protected it ($args)', async ({ args, protocol, algorithm, clientKey }) => {
    const { stdout, stderr } = await nomyo(['chat', 'Hello from the CLI', '--url', server.url, '--allow-http', '--tier', 'high', '--model', 'm', ...args], { NOMYO_API_KEY: 'sk-cli' });
    expect(stdout).toBe('echo: Hello from the CLI\n');
    expect(stderr).toContain(`protected: protocol ${protocol}, ${algorithm}`);
    expect(stderr).toMatch(clientKey);
    expect(stderr).toContain(`sha256:${server.fingerprint}`);
    expect(stderr).toMatch(/memory: (native|js)/);
    const last = server.requests.at(-1)!;
    expect(last.headers['x-security-tier']).toBe('high');
    expect(last.headers.authorization).toBe('Bearer sk-cli');
    expect(JSON.parse(new TextDecoder().decode(last.body)).version).toBe(`${protocol}.0`);
  });

  it('--protocol 2 refuses a v1-only router before sending', async () => {
    const v1 = await startTestServer({ protocol: 1 });
    try {
      const refused = (await nomyo(['chat', 'hi', '--url', v1.url, '--allow-http', '--quiet', '--protocol', '2'])) as { code?: number; stderr: string };
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: SecurityError \(ERR_NOMYO_SECURITY\): protocol: 2 is required/);
      expect(v1.requests.filter((r) => r.method === 'POST')).toEqual([]);
      const auto = await nomyo(['chat', 'hi', '--url', v1.url, '--allow-http']);
      expect(auto.stderr).toContain('protected: protocol 1, hybrid-aes256-rsa4096');
    } finally {
      await v1.close();
    }
  });

  it('reads the router URL from NOMYO_SERVER_URL', async () => {
    const { stdout } = await nomyo(['chat', 'via env', '--allow-http', '--quiet'], { NOMYO_SERVER_URL: server.url, NOMYO_API_KEY: 'sk-cli' });
    expect(stdout).toBe('echo: via env\n');
  });

  it('never prints escape sequences from the answer', async () => {
    const { stdout } = await nomyo(['chat', 'hostile', '--url', server.url, '--allow-http', '--quiet', '--api-key', 'sk-cli']);
    expect(stdout).toBe('okdone2J\n');
    const json = await nomyo(['chat', 'hostile', '--url', server.url, '--allow-http', '--quiet', '--json', '--api-key', 'sk-cli']);
    expect(json.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
    expect(JSON.parse(json.stdout).choices[0].message.content).toBe('ok\x1b]0;owned\x07\x1b[2Jdone\u202e\u009b2J');
  });

  it('fails with the error class and code, and exit status 1', async () => {
    const result = (await nomyo(['chat', 'hi', '--url', server.url, '--allow-http', '--quiet'])) as { code?: number; stderr: string };
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: AuthenticationError \(ERR_NOMYO_AUTHENTICATION\)/);
  });

  it("--fingerprint pins the router's key, --dir uses a key directory's trust store: another key is refused, nothing sent", async () => {
    const own = await startTestServer({ apiKey: 'sk-cli' });
    const chat = (...args: string[]) =>
      nomyo(['chat', 'pinned', '--url', own.url, '--allow-http', '--quiet', '--api-key', 'sk-cli', ...args]) as Promise<{ code?: number; stdout: string; stderr: string }>;
    const completions = () => own.requests.filter((r) => r.path !== '/pki/public_key').length;
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-chat-dir-'));
    try {
      const other = 'ab'.repeat(32);
      expect((await chat('--fingerprint', own.fingerprint)).stdout).toBe('echo: pinned\n');
      expect((await chat('--fingerprint', other, '--fingerprint', own.fingerprint)).stdout).toBe('echo: pinned\n');
      const wrong = await chat('--fingerprint', other);
      expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringMatching(/^error: SecurityError \(ERR_NOMYO_SECURITY\): /)]);
      expect(completions()).toBe(2);

      expect((await chat('--dir', dir)).stdout).toBe('echo: pinned\n'); // trusted on first use
      await own.rotateKey();
      const changed = await chat('--dir', dir);
      expect([changed.code, changed.stderr]).toEqual([1, expect.stringMatching(/^error: SecurityError \(ERR_NOMYO_SECURITY\): /)]);
      expect(completions()).toBe(3);
      expect((await chat()).stdout).toBe('echo: pinned\n'); // without the store: the new key
    } finally {
      await own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--dir with a key file encrypted with a password and no NOMYO_KEY_PASSWORD: the error names the variable, nothing sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nomyo-chat-dir-'));
    try {
      const keyFiles = fileURLToPath(new URL('../../test-vectors/keyfiles/', import.meta.url));
      copyFileSync(join(keyFiles, 'openssl-pbkdf2-sha256-100k.pem'), join(dir, 'private_key.pem'));
      copyFileSync(join(keyFiles, 'public.pem'), join(dir, 'public_key.pem'));
      const before = server.requests.length;
      const refused = (await nomyo(['chat', 'hi', '--url', server.url, '--allow-http', '--quiet', '--protocol', '1', '--dir', dir]).catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: KeyPasswordError \(ERR_NOMYO_KEY_PASSWORD\): .*password is required \(nomyo chat reads it from NOMYO_KEY_PASSWORD\)\n$/);
      expect(server.requests.slice(before).filter((r) => r.path !== '/pki/public_key')).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--version prints the version of @nomyo/core', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../packages/core/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await nomyo(['--version'])).toMatchObject({ stdout: `${version}\n` });
  });

  it('bad arguments are usage errors (exit 2) in the flags\' own terms, never repeated: plain http without --allow-http, an unknown option, a value the client refuses', async () => {
    for (const [args, env] of [[['--url', server.url], {}], [[], { NOMYO_SERVER_URL: server.url }]] as const) {
      const plain = (await nomyo(['chat', 'hi', ...args, '--quiet'], env)) as { code?: number; stderr: string };
      expect(plain.code).toBe(2);
      expect(plain.stderr).toBe('nomyo chat: the router URL is plain http, which sends the API key unencrypted: pass --allow-http (for local testing only)\n');
    }
    const unknown = (await nomyo(['chat', 'hi', '--apikey=sk-secret-typo', '--url', server.url, '--allow-http'])) as { code?: number; stderr: string };
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^nomyo chat: an unknown option \(not repeated here: it may be a secret\)\nusage: nomyo chat/);
    expect(unknown.stderr).not.toContain('sk-secret-typo');
    // A value the client refuses, in the flag's terms, before anything is sent.
    const before = server.requests.length;
    for (const [flag, value, says] of [
      ['--protocol', '3', "--protocol must be 'auto', 1 or 2"],
      ['--fingerprint', 'zz', '--fingerprint must be a SHA-256 fingerprint'],
      ['--dir', '', '--dir must be a non-empty path'],
      ['--tier', 'secret', '--tier must be one of standard, high, maximum'],
      ['--url', 'ftp://router.example', 'refusing the ftp: scheme: only https (or http with --allow-http) is allowed'],
      ['--url', 'http://user:pw@router.example', 'the router URL must not carry credentials; use --api-key'],
    ] as const) {
      const bad = (await nomyo(['chat', 'hi', '--url', server.url, '--allow-http', flag, value])) as { code?: number; stderr: string };
      expect(bad.code, flag).toBe(2);
      expect(bad.stderr, flag).toMatch(new RegExp(`^nomyo chat: ${says.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*\nusage: nomyo chat`));
    }
    expect(server.requests.length).toBe(before);
    const keys = (await nomyo(['keys', 'fingerprint', '--url', server.url])) as { code?: number; stderr: string };
    expect(keys.code).toBe(2);
    expect(keys.stderr).toBe("nomyo keys: the router URL is plain http, over which anything on the way can hand over its own key as the router's: pass --allow-http (for local testing only)\n");
  });

  it.each([[[]], [['--no-stream']]])('an error sealed for the request prints its message and the model server’s code (%j)', async (args) => {
    const result = (await nomyo(['chat', 'too long', '--url', server.url, '--allow-http', '--quiet', '--api-key', 'sk-cli', ...args])) as { code?: number; stderr: string };
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('error: InvalidRequestError (ERR_NOMYO_INVALID_REQUEST): 400: the context window is full [context_length_exceeded]\n');
  });

  it('prints the tokens as they arrive; --no-stream waits for the whole answer', async () => {
    const slow = await startTestServer({ echoDelayMs: 150 });
    try {
      const args = ['chat', 'one two three four five six', '--url', slow.url, '--allow-http'];
      const arrivals = await new Promise<{ at: number[]; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NOMYO_API_KEY: '' } });
        const at: number[] = [];
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (at.push(performance.now()), (stdout += d.toString())));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', () => resolve({ at, stdout, stderr }));
      });
      expect(arrivals.stdout).toBe('echo: one two three four five six\n');
      // Six pauses of 150 ms between the words: printed whole, they would come in one or two writes at the end.
      expect(arrivals.at.length).toBeGreaterThanOrEqual(5);
      expect(arrivals.at.at(-1)! - arrivals.at[0]!).toBeGreaterThan(150 * 5 * 0.5);
      expect(arrivals.stderr).toContain('protected: protocol 2, aes256gcm-hkdf-sha256-stream (AES-256-GCM bound to its headers, RSA-OAEP-SHA256, streamed records keyed with HKDF-SHA256)');
      const whole = await nomyo([...args, '--no-stream']);
      expect(whole.stdout).toBe('echo: one two three four five six\n');
      expect(whole.stderr).toContain('protected: protocol 2, aes256gcm-hkdf-sha256 (');
    } finally {
      await slow.close();
    }
  });

  it('a stream that ends in an error ends its line first: the error is on a line of its own', async () => {
    const failing = await startTestServer({
      model: async function* () {
        yield { id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'partial' }, finish_reason: null }] };
        throw new UpstreamError(502, 'generic', { message: 'the backend fell over', type: 'server_error', code: null, status: 502 });
      },
    });
    try {
      const result = (await nomyo(['chat', 'hi', '--url', failing.url, '--allow-http', '--quiet'])) as { code?: number; stdout: string; stderr: string };
      expect([result.code, result.stdout]).toEqual([1, 'partial\n']);
      expect(result.stderr).toMatch(/^error: \w*Error \(ERR_NOMYO_[A-Z_]+\): .*the backend fell over/);
    } finally {
      await failing.close();
    }
  });

  it('never prints escape sequences from a streamed answer, even split across chunks', async () => {
    const pieces = ['ok\x1b', ']0;owned\x07', '\x1b[', '2J', 'done\u202e\u009b', '2J\r', '\nend'];
    const hostile = await startTestServer({
      model: async function* () {
        for (const content of pieces) yield { id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] };
      },
    });
    try {
      const { stdout } = await nomyo(['chat', 'hi', '--url', hostile.url, '--allow-http', '--quiet']);
      expect(stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
      expect(stdout).toBe('ok]0;owned2Jdone2J\nend\n');
    } finally {
      await hostile.close();
    }
  });

  /** Runs `nomyo` with `input` on its stdin; resolves to its exit code and output. */
  const withStdin = (args: string[], input: Uint8Array | string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NOMYO_SERVER_URL: '', NOMYO_API_KEY: '' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });

  it('- reads the message from stdin (out of ps and shell history); not UTF-8 is a usage error', async () => {
    const read = await withStdin(['chat', '-', '--url', server.url, '--allow-http', '--api-key', 'sk-cli', '--quiet'], 'from stdin, über');
    expect(read).toMatchObject({ code: 0, stdout: 'echo: from stdin, über\n' });
    const invalid = await withStdin(['chat', '-', '--url', server.url, '--allow-http', '--api-key', 'sk-cli'], new Uint8Array([0x68, 0xff, 0x69]));
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('the message on stdin is not UTF-8');
    const empty = await withStdin(['chat', '-', '--url', server.url, '--allow-http'], '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^nomyo chat: no message\n/);
  });

  it('a reader that goes away (| head) ends it quietly, as SIGPIPE would (141): no stack trace', async () => {
    // An answer larger than the pipe (a socket pair here) holds: written after the reader has gone.
    const words = Array.from({ length: 100_000 }, (_, i) => `word${i}`).join(' ');
    const child = spawn(process.execPath, [CLI, 'chat', '-', '--url', server.url, '--allow-http', '--api-key', 'sk-cli', '--quiet', '--no-stream'], { env: { ...process.env, NOMYO_SERVER_URL: '' } });
    child.stdin.end(words); // over what one argument may hold (128 KiB)
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(141);
    expect(stderr).toBe('');
  });

  it('keeps the joiners and soft hyphen that scripts and emoji need, drops tag characters that hide text', async () => {
    const text = 'family 👨\u200d👩\u200d👧, می\u200cخواهم, soft\u00adhyphen, hidden\u{E0041}\u{E0042}';
    const { stdout } = await nomyo(['chat', text, '--url', server.url, '--allow-http', '--api-key', 'sk-cli', '--quiet', '--no-stream']);
    expect(stdout).toBe('echo: family 👨\u200d👩\u200d👧, می\u200cخواهم, soft\u00adhyphen, hidden\n');
  });

  it('prints a character cut between two chunks whole (an emoji as two halves of a surrogate pair)', async () => {
    const split = await startTestServer({
      model: async function* () {
        for (const content of ['smile \ud83d', '\ude00 done']) yield { id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] };
      },
    });
    try {
      const { stdout } = await nomyo(['chat', 'hi', '--url', split.url, '--allow-http', '--quiet']);
      expect(stdout).toBe('smile 😀 done\n');
    } finally {
      await split.close();
    }
  });

  it('a TERM while tokens print ends the line, then exits 143 (128 + 15), as a signal would', async () => {
    const slow = await startTestServer({ echoDelayMs: 50 });
    try {
      const child = spawn(process.execPath, [CLI, 'chat', 'one two three four five six seven eight nine ten', '--url', slow.url, '--allow-http', '--quiet'], { env: { ...process.env, NOMYO_SERVER_URL: '' } });
      let stdout = '';
      let killed = false;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d;
        if (!killed && stdout.includes('two')) killed = child.kill('SIGTERM');
      });
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
      expect([code, signal]).toEqual([143, null]);
      expect(stdout).toMatch(/^echo: one two.*\n$/s);
      expect(stdout).not.toContain('ten');
    } finally {
      await slow.close();
    }
  });

  it('--timeout and --max-retries bound a router that never answers (it held the command 361 s); bad values are usage errors', async () => {
    const silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const started = Date.now();
      const r = await nomyo(['chat', 'hi', '--url', url, '--allow-http', '--quiet', '--timeout', '0.5', '--max-retries', '0']);
      expect(r).toMatchObject({ failed: true, code: 1 });
      expect((r as { stderr: string }).stderr).toMatch(/APIConnectionTimeoutError .*within 500 ms/);
      expect(Date.now() - started).toBeLessThan(10_000);
      for (const bad of [['--timeout', '0'], ['--timeout', 'soon'], ['--max-retries=-1'], ['--max-retries', '1.5']]) {
        const refused = await nomyo(['chat', 'hi', '--url', url, '--allow-http', ...bad]);
        expect(refused).toMatchObject({ failed: true, code: 2 });
        expect((refused as { stderr: string }).stderr).toContain(`nomyo chat: ${bad[0]!.split('=')[0]} must be`);
      }
    } finally {
      silent.close();
    }
  });
});
