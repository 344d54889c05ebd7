/**
 * Part 1: the client's own cost per request (seal the request, open an answer of the same size),
 * with the network and the server taken out: `fetch` answers at once with a pre-sealed package.
 */
import { SecureCompletionClient } from '@nomyo/core';
import { sealPackage, generateRsaKeyPair, derToPem } from '@nomyo/core/protocol';
import { bareOpen, bareSeal, cryptoOnly, sealForCryptoOnly } from './bare.mjs';
import { answer, request, SIZES } from './payloads.mjs';
import { compare, fmt, ratio } from './stats.mjs';

const encoder = new TextEncoder();

export async function clientCost({ rounds }) {
  const server = await generateRsaKeyPair(4096, true);
  const serverPem = derToPem(new Uint8Array(await crypto.subtle.exportKey('spki', server.publicKey)), 'PUBLIC KEY');
  let answerBody = '';
  // Stands in for the network: takes the body as fetch would (one encoding of it), answers at once.
  const fetch = async (url, init) => {
    if (init?.body !== undefined) await new Request(url, { method: 'POST', body: init.body }).arrayBuffer();
    return new Response(url.endsWith('/pki/public_key') ? serverPem : answerBody, { status: 200 });
  };
  const client = new SecureCompletionClient({ routerUrl: 'https://router.invalid', fetch });
  const keys = await client.keyPair();

  const rows = [];
  for (const [label, bytes] of SIZES) {
    const payload = request(bytes);
    const reply = answer(bytes);
    answerBody = JSON.stringify(await sealPackage(encoder.encode(JSON.stringify(reply)), keys.publicKey));
    const replyBytes = encoder.encode(JSON.stringify(reply));
    const cryptoAnswer = await sealForCryptoOnly(replyBytes, keys.publicKey);
    const requestBytes = encoder.encode(JSON.stringify(payload));
    const r = await compare(
      {
        ours: () => client.sendSecureRequest(payload),
        bare: async () => {
          const res = await fetch('https://router.invalid/v1/chat/secure_completion', { body: await bareSeal(payload, server.publicKey) });
          await bareOpen(await res.text(), keys.privateKey);
        },
        crypto: () => cryptoOnly(requestBytes, server.publicKey, cryptoAnswer, keys.privateKey),
      },
      { rounds: bytes > 1e6 ? Math.max(5, rounds >> 2) : rounds },
    );
    rows.push({ label, ...r });
  }
  await client.dispose();
  return rows;
}

export function printClientCost(rows) {
  console.log('\nClient-side cost per request (seal request + open answer of the same size; no network, no server)');
  // The RSA work is the same on both sides here: what differs is the library's own work.
  console.log("the same client key on both sides (in the next part the bare client has its own, two-prime); @nomyo's body goes to a fetch option here, which copies it");
  console.log('size      ' + '     @nomyo' + '       bare' + '  crypto only' + '  @nomyo/bare' + '  @nomyo/crypto');
  for (const r of rows) {
    console.log(`${r.label.padEnd(9)} ${fmt(r.ours)} ${fmt(r.bare)} ${fmt(r.crypto)}     ${ratio(r.ours, r.bare)}        ${ratio(r.ours, r.crypto)}`);
  }
}
