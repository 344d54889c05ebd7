#!/usr/bin/env node
// `pnpm start`: the reference router on a free loopback port with the echo model, one encrypted
// chat completion through @nomyo/core, what protected it (protocol v2 where the router speaks it,
// as the reference router does), then the same question streamed, word by word as the echo model
// makes them (40 ms apart), then a clean exit.
import { SecureChatCompletion } from '@nomyo/core';
import { startServer } from '@nomyo/server';

const server = await startServer({ host: '127.0.0.1', port: 0, echoDelayMs: 40 });
const client = new SecureChatCompletion({ baseUrl: server.url, allowHttp: true, onWarning: () => {} });
try {
  const question = 'What protects this message on its way to the model?';
  const started = performance.now();
  const completion = await client.create({ model: 'echo', messages: [{ role: 'user', content: question }], security_tier: 'standard' });
  const ms = performance.now() - started;
  const meta = completion._metadata;
  const [serverKey, memory] = await Promise.all([client.client.fetchServerPublicKey(), client.client.memoryProtection()]);

  console.log(`NOMYO.js demo: reference router at ${server.url} (echo model, loopback only)\n`);
  console.log(`you:    ${question}`);
  console.log(`answer: ${completion.choices[0].message.content}\n`);
  console.log(`what protected it: protocol ${meta.protocol} (the router advertises ${serverKey.protocols.join(', ')})`);
  console.log(`  package        ${meta.encryption_algorithm}, payload id ${meta.payload_id}`);
  console.log('  payload        AES-256-GCM, fresh 256-bit key and 96-bit nonce per request, 128-bit tag');
  if (meta.protocol === 2) {
    console.log(`  key wrapping   RSA-OAEP-SHA256 to the router's RSA-${serverKey.bits} key`);
    console.log('  binding        payload id and security tier sealed in (AES-GCM associated data): a proxy cannot change them');
    console.log('  answer         sealed with HKDF-SHA256(request key, payload id): only the router that opened this request could seal it');
    console.log('  our key        none: protocol 2 needs no client key pair, so none was generated');
  } else {
    const keys = await client.client.keyPair();
    console.log(`  key wrapping   RSA-OAEP-SHA256 to the router's RSA-${serverKey.bits} key; the answer to our RSA-${keys.bits} key`);
    console.log(`  our key        sha256:${keys.fingerprint} (${keys.primes} primes, private key not extractable)`);
  }
  console.log(`  router key     sha256:${serverKey.fingerprint}`);
  console.log(`  memory         ${memory.kind}: ${memory.reason}`);
  console.log(`  transport      plain HTTP on loopback for this demo (allowHttp); use HTTPS for anything real`);
  console.log(`  time           ${ms.toFixed(0)} ms${meta.protocol === 2 ? ', with no key pair to generate' : ', including generating our key pair'}`);

  // The same question, streamed: each word sealed as its own record, printed as it arrives.
  process.stdout.write('\nstreamed: ');
  const stream = await client.create({ model: 'echo', messages: [{ role: 'user', content: question }], stream: true });
  let records = 0;
  for await (const chunk of stream) {
    records++;
    process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  }
  const streamed = stream._metadata;
  console.log(`\n  ${records} chunks, each a record padded to 128 bytes and sealed with ${streamed.encryption_algorithm} (keys from HKDF-SHA256 of the request key)`);
} finally {
  await client.dispose();
  await server.close();
}
