import { describe, expect, it } from 'vitest';
import { checkApiKeyFormat, checkSecurityTier, routerBaseUrl } from '../../src/transport/policy.js';
import { InvalidArgumentError, SecurityError } from '../../src/errors.js';
import { isRetryable, parseRetryAfter, retryDelayMs } from '../../src/transport/retry.js';
import { APIConnectionError, RateLimitError, ServiceUnavailableError } from '../../src/errors.js';

describe('transport policy', () => {
  it('accepts https and strips trailing slashes', () => {
    expect(routerBaseUrl('https://api.nomyo.ai:12434/', false)).toBe('https://api.nomyo.ai:12434');
    expect(routerBaseUrl('HTTPS://Router.Example/base/', false)).toBe('https://router.example/base');
  });

  it.each(['http://127.0.0.1:1234', 'HTTP://127.0.0.1', 'Http://localhost'])('refuses %s without allowHttp', (url) => {
    expect(() => routerBaseUrl(url, false)).toThrow(SecurityError);
    expect(routerBaseUrl(url, true)).toMatch(/^http:\/\//);
  });

  it.each(['ftp://x', 'file:///etc/passwd', 'ws://x', 'javascript:alert(1)', 'data:text/plain,x'])('refuses the scheme of %s, even with allowHttp', (url) => {
    expect(() => routerBaseUrl(url, true)).toThrow(SecurityError);
  });

  it('refuses malformed URLs and URLs with credentials', () => {
    expect(() => routerBaseUrl('not a url', true)).toThrow(InvalidArgumentError);
    expect(() => routerBaseUrl('https://user:pw@x', true)).toThrow(InvalidArgumentError);
  });

  it("refuses an OpenAI SDK's /v1 as the whole path, saying so; another path (a proxy's prefix, one that ends in v1) is the router's", () => {
    for (const url of ['http://127.0.0.1:8080/v1', 'https://router.example/V1/']) {
      expect(() => routerBaseUrl(url, true)).toThrow(new InvalidArgumentError(`the router URL is the router's own (${new URL(url).origin}), without the /v1 an OpenAI SDK's baseURL has`));
    }
    expect(routerBaseUrl('https://router.example/nomyo/', false)).toBe('https://router.example/nomyo');
    expect(routerBaseUrl('https://gw.example/teams/nomyo/v1', false)).toBe('https://gw.example/teams/nomyo/v1');
    expect(routerBaseUrl('https://router.example/v1beta', false)).toBe('https://router.example/v1beta');
  });

  it('a host and port without a scheme: the message says how to write it, with nothing after the port (it may be a secret)', () => {
    expect(() => routerBaseUrl('localhost:8080', true)).toThrow('refusing the localhost: scheme: only https (or http with allowHttp) is allowed: give it as https://localhost:8080');
    const withQuery = (() => {
      try {
        return routerBaseUrl('localhost:8080/?api_key=sk-live-SECRET', true);
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(withQuery).toMatch(/give it as https:\/\/localhost:8080$/);
    expect(withQuery).not.toContain('SECRET');
    expect(() => routerBaseUrl('127.0.0.1:8080', true)).toThrow('the router URL is not a valid URL: give it as https://host:port');
  });

  it.each(['key\r\nX-Evil: 1', 'key\n', 'k\x00y', 'k\x7f', 'ключ', ''])('refuses the API key %j without echoing it', (key) => {
    let err: unknown;
    try {
      checkApiKeyFormat(key);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    if (key) expect((err as Error).message).not.toContain(key);
  });

  it('accepts known tiers and refuses others', () => {
    expect(checkSecurityTier('maximum')).toBe('maximum');
    expect(checkSecurityTier(undefined)).toBeUndefined();
    expect(() => checkSecurityTier('ultra')).toThrow(InvalidArgumentError);
    expect(() => checkSecurityTier('HIGH')).toThrow(InvalidArgumentError);
  });
});

describe('retry timing', () => {
  it('honours Retry-After in seconds, as an HTTP date, and retry-after-ms', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }))).toBe(3);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250' }))).toBe(0.25);
    const inTwo = new Date(Date.now() + 2000).toUTCString();
    expect(parseRetryAfter(new Headers({ 'retry-after': inTwo }))).toBeGreaterThan(0.5);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
  });

  it('backs off exponentially with jitter, waits a Retry-After and up to a fifth more, and gives up on one over a minute', () => {
    const err = new ServiceUnavailableError(503);
    expect(retryDelayMs(1, err, () => 0)).toBe(250);
    expect(retryDelayMs(1, err, () => 1)).toBe(500);
    expect(retryDelayMs(3, err, () => 1)).toBe(2000);
    const told = new RateLimitError(429, { headers: new Headers({ 'retry-after': '2' }) });
    expect([retryDelayMs(1, told, () => 0), retryDelayMs(1, told, () => 0.5), retryDelayMs(1, told, () => 1)]).toEqual([2000, 2200, 2400]);
    expect(retryDelayMs(1, new RateLimitError(429, { headers: new Headers({ 'retry-after': '3600' }) }))).toBeUndefined();
  });

  it('backs off on a Retry-After of 0 or a date gone by, which name no time', () => {
    for (const value of ['0', new Date(Date.now() - 5000).toUTCString()]) {
      const err = new RateLimitError(429, { headers: new Headers({ 'retry-after': value }) });
      expect(retryDelayMs(2, err, () => 0)).toBe(500);
    }
    expect(retryDelayMs(1, new RateLimitError(429, { headers: new Headers({ 'retry-after-ms': '0' }) }), () => 1)).toBe(500);
  });
});

describe('isRetryable: connection failures', () => {
  const failure = (code: string) => new APIConnectionError('could not reach the router', { cause: new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) }) });

  it.each(['INVALID_PURPOSE', 'INVALID_CA', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CRL_HAS_EXPIRED'])(
    'a certificate refused (%s) is not retried: the same on every try',
    (code) => expect(isRetryable(failure(code))).toBe(false),
  );

  it.each(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'ERR_SSL_WRONG_VERSION_NUMBER'])('another connection failure (%s) is retried', (code) => {
    expect(isRetryable(failure(code))).toBe(true);
  });
});
