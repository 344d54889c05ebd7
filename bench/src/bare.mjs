/**
 * The baseline: the same protocol work written with bare Web Crypto calls and the fastest
 * encoders Node has (Buffer base64, JSON), no validation, no zeroing, no memory protection.
 * `cryptoOnly*` is just the Web Crypto calls on bytes made beforehand.
 */
const subtle = globalThis.crypto.subtle;
const OAEP = { name: 'RSA-OAEP' };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function bareSeal(payload, serverPublicKey) {
  const plaintext = encoder.encode(JSON.stringify(payload));
  const aesKey = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const [sealed, wrapped] = await Promise.all([
    subtle.encrypt({ name: 'AES-GCM', iv }, aesKey, plaintext),
    subtle.wrapKey('raw', aesKey, serverPublicKey, OAEP),
  ]);
  const ctLength = sealed.byteLength - 16;
  return JSON.stringify({
    version: '1.0',
    algorithm: 'hybrid-aes256-rsa4096',
    encrypted_payload: {
      ciphertext: Buffer.from(sealed, 0, ctLength).toString('base64'),
      nonce: Buffer.from(iv).toString('base64'),
      tag: Buffer.from(sealed, ctLength).toString('base64'),
    },
    encrypted_aes_key: Buffer.from(wrapped).toString('base64'),
    key_algorithm: 'RSA-OAEP-SHA256',
    payload_algorithm: 'AES-256-GCM',
  });
}

export async function bareOpen(body, clientPrivateKey) {
  const pkg = JSON.parse(body);
  const { ciphertext, nonce, tag } = pkg.encrypted_payload;
  const sealed = Buffer.concat([Buffer.from(ciphertext, 'base64'), Buffer.from(tag, 'base64')]);
  const aesKey = await subtle.unwrapKey('raw', Buffer.from(pkg.encrypted_aes_key, 'base64'), clientPrivateKey, OAEP, { name: 'AES-GCM' }, false, ['decrypt']);
  const plaintext = await subtle.decrypt({ name: 'AES-GCM', iv: Buffer.from(nonce, 'base64') }, aesKey, sealed);
  return JSON.parse(decoder.decode(plaintext));
}

/** Only the Web Crypto calls of one request: seal `bytes`, open `sealedAnswer`. */
export async function cryptoOnly(bytes, serverPublicKey, answer, clientPrivateKey) {
  const aesKey = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  await Promise.all([subtle.encrypt({ name: 'AES-GCM', iv }, aesKey, bytes), subtle.wrapKey('raw', aesKey, serverPublicKey, OAEP)]);
  const key = await subtle.unwrapKey('raw', answer.wrapped, clientPrivateKey, OAEP, { name: 'AES-GCM' }, false, ['decrypt']);
  await subtle.decrypt({ name: 'AES-GCM', iv: answer.iv }, key, answer.sealed);
}

/** Pre-sealed answer material for cryptoOnly. */
export async function sealForCryptoOnly(bytes, clientPublicKey) {
  const aesKey = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await subtle.encrypt({ name: 'AES-GCM', iv }, aesKey, bytes);
  const wrapped = await subtle.wrapKey('raw', aesKey, clientPublicKey, OAEP);
  return { iv, sealed, wrapped };
}
