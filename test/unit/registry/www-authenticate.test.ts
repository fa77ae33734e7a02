import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseWwwAuthenticate } from '../../../src/registry/www-authenticate.js';
import { retryAfterMs, describeErrorBody, isRetryableNetworkError } from '../../../src/registry/http-util.js';

test('Bearer challenge with realm, service and several scopes', () => {
  const c = parseWwwAuthenticate('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull repository:c:pull,push"');
  assert.equal(c, [{ scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull repository:c:pull,push' } }]);
});

test('Basic challenge, unquoted values, escaped quotes, error param', () => {
  assert.equal(parseWwwAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.equal(parseWwwAuthenticate('Bearer realm=https://x/t, error="insufficient_scope", note="a \\"q\\""'), [
    { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope', note: 'a "q"' } },
  ]);
});

test('several headers and several challenges in one header', () => {
  const c = parseWwwAuthenticate(['Basic realm="r"', 'Bearer realm="https://t",service="s"']);
  assert.equal(c.map((x) => x.scheme), ['basic', 'bearer']);
  assert.equal(parseWwwAuthenticate('Basic realm="r", Bearer realm="t"').map((x) => [x.scheme, x.params.realm]), [['basic', 'r'], ['bearer', 't']]);
  assert.equal(parseWwwAuthenticate(undefined), []);
});

test('Retry-After as seconds or an HTTP date', () => {
  assert.is(retryAfterMs('3'), 3000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.is(retryAfterMs('soon'), undefined);
  assert.is(retryAfterMs(undefined), undefined);
});

test('registry error bodies are summarised; HTML is not echoed', () => {
  assert.is(describeErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'), 'MANIFEST_UNKNOWN: manifest unknown');
  assert.is(describeErrorBody('<html>oops</html>'), undefined);
});

test('retryable network errors are recognised through causes', () => {
  assert.ok(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
  assert.ok(isRetryableNetworkError(new Error('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) })));
  assert.not.ok(isRetryableNetworkError(new Error('bad json')));
});

test.run();
