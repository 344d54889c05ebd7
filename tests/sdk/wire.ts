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

/** Parses a recorded body as a protocol package and checks that `secrets` appear nowhere in it. */
export function expectSealed(body: Uint8Array, secrets: string[]): { encrypted_aes_key: string; encrypted_payload: unknown } {
  const text = new TextDecoder().decode(body);
  for (const secret of secrets) {
    if (text.includes(secret)) throw new Error(`plaintext "${secret}" found on the wire`);
  }
  const pkg = JSON.parse(text) as { version?: unknown; encrypted_payload?: unknown; encrypted_aes_key?: unknown };
  if (pkg.version !== '1.0' || typeof pkg.encrypted_payload !== 'object' || typeof pkg.encrypted_aes_key !== 'string') {
    throw new Error('the wire body is not a NOMYO package');
  }
  return pkg as { encrypted_aes_key: string; encrypted_payload: unknown };
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
