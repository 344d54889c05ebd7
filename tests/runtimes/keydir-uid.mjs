// Deno without --allow-sys=uid: a client with a key directory (its owner is checked against this
// process's user id, which Deno then refuses to tell). Prints the error as one JSON line.
import { SecureCompletionClient } from '@nomyo/core';

const [url, keyDir] = globalThis.Deno.args;
const client = new SecureCompletionClient({ routerUrl: url, allowHttp: true, protocol: 1, keySize: 2048, keyDir, maxRetries: 0 });
const outcome = await client.sendSecureRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).then(
  () => ({ name: 'answered' }),
  (err) => ({ name: err.name, code: err.code, message: err.message }),
);
await client.dispose();
console.log(JSON.stringify(outcome));
