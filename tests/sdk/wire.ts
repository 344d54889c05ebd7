/** A reference router on loopback and checks on what crossed the wire (no @nomyo/core import). */
import { startServer, type NomyoServer, type ServerOptions } from '@nomyo/server';

export const SECURE_PATH = '/v1/chat/secure_completion';
// 2048-bit keys: the protocol allows them and they keep the suite fast on small CI machines.
export const KEY_SIZE = 2048;

export async function startRouter(options: ServerOptions = {}): Promise<NomyoServer> {
  return startServer({ port: 0, keySize: KEY_SIZE, recordRequests: true, ...options });
}

/** The secure-completion requests the router received, oldest first. */
export function completionRequests(server: NomyoServer) {
  return server.requests.filter((r) => r.method === 'POST' && r.path === SECURE_PATH);
}

/**
 * Parses a recorded request body as a protocol package (v1 `1.0` or v2 `2.0`, or exactly `version`
 * when given) and checks that `secrets` appear nowhere in it.
 */
export function expectSealed(body: Uint8Array, secrets: string[], version?: '1.0' | '2.0'): { version: string; encrypted_aes_key: string; encrypted_payload: unknown } {
  const text = new TextDecoder().decode(body);
  for (const secret of secrets) {
    if (text.includes(secret)) throw new Error(`plaintext "${secret}" found on the wire`);
  }
  const pkg = JSON.parse(text) as { version?: unknown; encrypted_payload?: unknown; encrypted_aes_key?: unknown };
  const versionOk = version === undefined ? pkg.version === '1.0' || pkg.version === '2.0' : pkg.version === version;
  if (!versionOk || typeof pkg.encrypted_payload !== 'object' || typeof pkg.encrypted_aes_key !== 'string') {
    throw new Error(`the wire body is not a NOMYO package${version ? ` of version ${version}` : ''}`);
  }
  return pkg as { version: string; encrypted_aes_key: string; encrypted_payload: unknown };
}

/** Every body the router received or sent: none may carry a plaintext. */
export function expectNoPlaintextOnWire(server: NomyoServer, secrets: string[]): void {
  const decoder = new TextDecoder();
  for (const record of server.requests) {
    for (const bytes of [record.body, record.response?.body ?? new Uint8Array()]) {
      const text = decoder.decode(bytes);
      for (const secret of secrets) {
        if (text.includes(secret)) throw new Error(`plaintext "${secret}" found on the wire (${record.method} ${record.path})`);
      }
    }
  }
}
