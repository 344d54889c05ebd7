/**
 * Node's own refusals ('clientError'): a request it cannot parse (400), headers over its limit
 * (431), the headers timeout (408) are answered as Node answers them, and logged and counted, with
 * nothing of what the client sent; the request timeout of a request whose body is being read is that
 * request's own line, with its status and the bytes that came. The CLI writes the line as any
 * other: in JSON with --log-format json, not at all with --quiet.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PATHS } from '@nomyo/core/protocol';
import { startServer, type LogEvent, type NomyoServer } from '../src/index.js';
import { VECTOR_KEY_FILE } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let server: NomyoServer | undefined;
afterEach(async () => {
  await server?.close({ drainTimeoutMs: 0 });
  server = undefined;
});

/** Sends `text` on a new connection; resolves to what came back once the router closed it (at most 5 s). */
async function exchange(port: number, text: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  let reply = '';
  socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = once(socket, 'close');
  socket.write(text);
  await Promise.race([closed, sleep(5000)]);
  socket.destroy();
  return reply;
}

const SECRET = 'sk-secret-in-a-bad-request';

describe("Node's own refusals", () => {
  it('a request Node cannot parse (400), headers over its limit (431) and the headers timeout (408): answered as Node does, logged and counted, nothing of the request in the line', async () => {
    const events: LogEvent[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, headersTimeoutMs: 300, requestTimeoutMs: 1000, onLog: (e) => events.push(e) });
    expect(await exchange(server.port, `BAD\x01METHOD /${SECRET} HTTP/1.1\r\nHost: x\r\n\r\n`)).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    expect(await exchange(server.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${SECRET.repeat(2000)}\r\n\r\n`)).toBe('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
    expect(await exchange(server.port, `GET /${SECRET} HTTP/1.1\r\nHost: x\r\n`)).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    expect(events.map((e) => [e.level, e.message, e.fields?.status])).toEqual([
      ['info', 'client error 400', 400],
      ['info', 'client error 431', 431],
      ['info', 'client error 408', 408],
    ]);
    expect(events.map((e) => e.fields?.code)).toEqual(['HPE_INVALID_METHOD', 'HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT']);
    expect(JSON.stringify(events)).not.toContain(SECRET);
    const metrics = await (await fetch(server.url + '/metrics')).text();
    for (const status of [400, 408, 431]) expect(metrics).toContain(`nomyo_requests_total{protocol="none",status="${status}",streamed="false"} 1`);
    expect(server.stats.errors).toBe(3);
  });

  it("the request timeout of a body being read is its request's line: 408 and the bytes that came, no second line", async () => {
    const events: LogEvent[] = [];
    server = await startServer({ keyFile: VECTOR_KEY_FILE, headersTimeoutMs: 200, requestTimeoutMs: 500, onLog: (e) => events.push(e) });
    const reply = await exchange(server.port, `POST ${PATHS.secureCompletion} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(300)}`);
    expect(reply).toBe('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    await expect.poll(() => events.length).toBe(1);
    expect([events[0]!.message, events[0]!.request?.status, events[0]!.request?.bytes_in]).toEqual([`POST ${PATHS.secureCompletion} 408`, 408, 300]);
    expect(await (await fetch(server.url + '/metrics')).text()).toContain('nomyo_requests_total{protocol="none",status="408",streamed="false"} 1');
  });

  it('the CLI writes the line in JSON with --log-format json, and not with --quiet', async () => {
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const lines = async (args: string[]): Promise<string> => {
      const proc = spawn(process.execPath, [cli, '--port', '0', '--key-file', VECTOR_KEY_FILE, ...args]);
      try {
        let stderr = '';
        proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
        const [line] = (await once(createInterface({ input: proc.stdout }), 'line')) as [string];
        const port = Number(new URL(line.slice('listening on '.length)).port);
        expect(await exchange(port, 'BAD\x01 / HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
        await sleep(200);
        return stderr;
      } finally {
        proc.kill('SIGKILL');
      }
    };
    const json = (await lines(['--log-format', 'json'])).split('\n').filter((l) => l.includes('client error'));
    expect(json).toHaveLength(1);
    expect(JSON.parse(json[0]!)).toMatchObject({ level: 'info', message: 'client error 400', status: 400, code: 'HPE_INVALID_METHOD' });
    expect(await lines(['--quiet'])).not.toContain('client error');
  });
});
