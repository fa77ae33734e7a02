import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type CacheKeyParts, cacheKey, explainParts } from '../../../src/build/cache-key.js';

const base: CacheKeyParts = {
  instruction: 'COPY ["f","/f"]',
  parent: 'sha256:p',
  platform: 'linux/amd64',
  args: { A: '1' },
  sources: { digest: 'sha256:s1', files: { f: 'aa', g: 'bb' } },
};

test('the key covers instruction, parent, platform, args read and the sources digest', () => {
  const k = cacheKey(base);
  assert.ok(/^sha256:[a-f0-9]{64}$/.test(k));
  assert.is(cacheKey({ ...base, args: { A: '1' } }), k, 'stable');
  assert.is(cacheKey({ ...base, sources: { digest: 'sha256:s1', files: {} } }), k, 'per-file map is for explain only');
  for (const change of [{ instruction: 'x' }, { parent: 'sha256:q' }, { platform: 'linux/arm64' }, { args: { A: '2' } }, { sources: { digest: 'sha256:s2', files: {} } }, { inputs: { from: 'k' } }]) {
    assert.is.not(cacheKey({ ...base, ...change }), k, JSON.stringify(change));
  }
});

test('explain names the file, the arg, the base that changed', () => {
  assert.equal(explainParts(undefined, base), ['no previous build of this step']);
  assert.equal(explainParts(base, base), []);
  assert.equal(explainParts(base, { ...base, sources: { digest: 'sha256:s2', files: { f: 'cc', h: 'dd' } } }), ['file changed: f', 'file removed: g', 'file added: h']);
  assert.equal(explainParts(base, { ...base, args: { A: '2' } }), ['arg A changed: "1" → "2"']);
  assert.equal(explainParts({ ...base, parent: 'base:sha256:a' }, { ...base, parent: 'base:sha256:b' }), ['base image changed: sha256:a → sha256:b']);
  assert.equal(explainParts(base, { ...base, parent: 'sha256:other' }), ['a previous step changed']);
});

test.run();
