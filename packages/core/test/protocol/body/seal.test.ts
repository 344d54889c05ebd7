/**
 * sealBody, the one way a body is sealed: a plaintext placed with room around it (sealablePlaintexts)
 * is sealed where it is, and its buffer becomes the body's; anything else is sealed into a buffer of
 * its own and released. Either way the body is exactly what serializePackage writes.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { importRsaPublicKey } from '../../../src/crypto/rsa.js';
import { pemToDer } from '../../../src/crypto/pem.js';
import type { Bytes } from '../../../src/crypto/subtle.js';
import { owned, type ByteSource, type OwnedBytes } from '../../../src/memory/owned-bytes.js';
import { sealablePlaintexts } from '../../../src/protocol/body/layout.js';
import { sealBody } from '../../../src/protocol/body/seal.js';
import { sealWith, serializePackage, v1Sealing } from '../../../src/protocol/package.js';
import { LARGE_BODY_BYTES } from '../../../src/sizes.js';
import { readVectorText } from '../../helpers/vectors.js';

let serverPublic: CryptoKey;
beforeAll(async () => {
  serverPublic = await importRsaPublicKey(pemToDer(readVectorText('v1/keys/server_4096.pub.pem'), 'PUBLIC KEY'));
});

/** A source that records what it hands out and what comes back, and whether it came back zeroed. */
function recording(secure: boolean) {
  const log = { taken: [] as Uint8Array[], released: [] as Array<{ bytes: Uint8Array; zeroed: boolean }> };
  const source: ByteSource = {
    secure,
    take(size) {
      const bytes = new Uint8Array(size).fill(0xee);
      log.taken.push(bytes);
      return owned(bytes, secure, () => {
        if (secure) bytes.fill(0);
        log.released.push({ bytes, zeroed: bytes.every((b) => b === 0) });
      });
    },
  };
  return { source, log };
}

function plaintextIn(source: ByteSource, bytes: Uint8Array): OwnedBytes {
  const taken = source.take(bytes.length);
  taken.bytes.set(bytes);
  return taken;
}

describe('sealBody', () => {
  it.each([
    ['a large plaintext placed in secure memory (the client)', true],
    ['a large plaintext placed in a wire buffer (the router)', false],
  ])('seals %s where it is: one buffer, exactly the package, nothing of the plaintext left', async (_what, secure) => {
    const plaintext = new Uint8Array(randomBytes(LARGE_BODY_BYTES * 3)) as Bytes;
    const large = recording(secure);
    const small = recording(true);
    const wire = recording(false);
    const placed = plaintextIn(sealablePlaintexts(small.source, large.source), plaintext);
    expect(placed.placement).toBeDefined();
    const sealing = await v1Sealing(serverPublic);
    const body = await sealBody(sealing, placed, wire.source);
    expect(body.bytes.buffer).toBe(large.log.taken[0]!.buffer);
    expect(wire.log.taken).toEqual([]);
    expect(new TextDecoder().decode(body.bytes)).toBe(serializePackage(await sealWith(sealing, plaintext)));
    // Past the body, nothing of the plaintext: zeros (or the buffer's own filler, never written).
    const buffer = large.log.taken[0]!;
    const rest = buffer.subarray(body.bytes.length);
    expect(Buffer.from(rest).includes(Buffer.from(plaintext.subarray(0, 64)))).toBe(false);
    expect(large.log.released).toEqual([]);
    body.release();
    body.release();
    expect(large.log.released).toHaveLength(1);
  });

  it('seals a small plaintext into a buffer of its own and releases the plaintext (zeroed)', async () => {
    const plaintext = new Uint8Array(randomBytes(1000)) as Bytes;
    const small = recording(true);
    const wire = recording(false);
    const taken = plaintextIn(sealablePlaintexts(small.source, recording(false).source), plaintext);
    expect(taken.placement).toBeUndefined();
    const sealing = await v1Sealing(serverPublic);
    const body = await sealBody(sealing, taken, wire.source);
    expect(small.log.released).toEqual([{ bytes: small.log.taken[0], zeroed: true }]);
    expect(body.bytes.buffer).toBe(wire.log.taken[0]!.buffer);
    expect(new TextDecoder().decode(body.bytes)).toBe(serializePackage(await sealWith(sealing, plaintext)));
    body.release();
    expect(wire.log.released).toHaveLength(1);
  });

  it('a placed plaintext released without being sealed is zeroed, whatever its buffer does', () => {
    const wire = recording(false);
    const placed = plaintextIn(sealablePlaintexts(recording(true).source, wire.source), new Uint8Array(LARGE_BODY_BYTES).fill(9));
    const view = placed.bytes;
    placed.release();
    placed.placement!.releaseSealed(); // a second way back: nothing happens twice
    expect(view.every((b) => b === 0)).toBe(true);
    expect(wire.log.released).toHaveLength(1);
  });

  it('on failure releases the plaintext and gives the error', async () => {
    const small = recording(true);
    const taken = plaintextIn(small.source, new Uint8Array(10).fill(1));
    const broken = { ...(await v1Sealing(serverPublic)), params: { key: {} as CryptoKey, nonce: new Uint8Array(12) as Bytes } };
    await expect(sealBody(broken, taken, recording(false).source)).rejects.toThrow();
    expect(small.log.released).toEqual([{ bytes: small.log.taken[0], zeroed: true }]);
  });
});
