// The browser example: @nomyo/core unchanged, as ES modules (serve.mjs serves /core/).
import { SecureChatCompletion } from '/core/index.js';

const $ = (id) => document.getElementById(id);
$('router').value = new URLSearchParams(location.search).get('router') ?? 'http://127.0.0.1:12434';

// One client per router URL. With a router that speaks protocol v2 (the reference router does) it
// needs no key pair at all; with a v1-only router it generates one, once, on first use.
let chat;
let chatUrl;
function clientFor(url) {
  if (chat && chatUrl === url) return chat;
  void chat?.dispose();
  // allowHttp only for a plain-http URL such as the local reference router; use https otherwise.
  chat = new SecureChatCompletion({ baseUrl: url, allowHttp: url.startsWith('http:') });
  chatUrl = url;
  return chat;
}

function show(state, status) {
  document.body.dataset.state = state;
  $('status').textContent = status;
}

/**
 * Under v1, reports whether the page could read its own private key (it must not be able to).
 * Under v2 there is none: asking for it would generate one just to show it.
 */
async function describeKey(client, protocol) {
  if (protocol === 2) return 'no client key pair: protocol 2 seals the answer with a key derived from this request\'s own AES key';
  const { privateKey, bits, primes } = await client.client.keyPair();
  try {
    await crypto.subtle.exportKey('pkcs8', privateKey);
    return `private key (RSA-${bits}, ${primes} primes): EXPORTABLE — this should not happen`;
  } catch (err) {
    return `private key (RSA-${bits}, ${primes} primes): extractable=${privateKey.extractable}, export refused (${err.name})`;
  }
}

$('ask').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('answer').textContent = '';
  $('meta').textContent = '';
  show('busy', 'sending the sealed request…');
  try {
    const client = clientFor($('router').value.trim());
    const params = { model: $('model').value.trim(), messages: [{ role: 'user', content: $('message').value }] };
    const options = { apiKey: $('apiKey').value || undefined };
    const answer = $('stream').checked ? await streamAnswer(client, params, options) : await wholeAnswer(client, params, options);
    $('meta').textContent = answer.meta;
    $('key').textContent = await describeKey(client, answer.protocol);
    show('done', 'done');
  } catch (err) {
    show('error', `${err.name}: ${err.message}`);
  }
});

/** Shows the answer once it has all come and been opened. */
async function wholeAnswer(client, params, options) {
  const completion = await client.chat.completions.create(params, options);
  $('answer').textContent = completion.choices[0]?.message.content ?? '(no content)';
  const m = completion._metadata;
  return { protocol: m.protocol, meta: `encrypted: ${m.is_encrypted}, protocol ${m.protocol} (${m.encryption_algorithm}), whole answer, payload id ${m.payload_id}` };
}

/** Shows the answer token by token, each as its sealed record arrives and opens. */
async function streamAnswer(client, params, options) {
  const stream = await client.chat.completions.create({ ...params, stream: true }, options);
  $('status').textContent = 'receiving the sealed stream…';
  for await (const chunk of stream) $('answer').textContent += chunk.choices[0]?.delta.content ?? '';
  const m = stream._metadata;
  // A v1 router, or one that does not stream, answers whole: the client hands that answer over as chunks.
  const how = m.streamed ? 'streamed by the router' : 'answered whole, shown as chunks';
  return { protocol: m.protocol, meta: `protocol ${m.protocol} (${m.encryption_algorithm}), ${how}, payload id ${m.payload_id}` };
}

// For poking around in the devtools console: `await nomyoExample.chat.client.keyPair()`.
globalThis.nomyoExample = {
  get chat() {
    return chat;
  },
};
