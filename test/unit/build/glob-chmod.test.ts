import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyModeSpec, parseModeSpec } from '../../../src/build/chmod-spec.js';
import { hasWildcard, matchComponent, matchPath } from '../../../src/build/glob.js';

test('COPY wildcards follow Go path.Match per component', () => {
  assert.ok(matchComponent('*.go', 'foo.go'));
  assert.not.ok(matchComponent('*.go', 'dir/foo.go'));
  assert.ok(matchComponent('f?o', 'foo'));
  assert.ok(matchComponent('[a-c]x', 'bx'));
  assert.not.ok(matchComponent('[^a-c]x', 'bx'));
  assert.ok(matchComponent('\\*', '*'));
  assert.not.ok(matchComponent('\\*', 'a'));
  assert.ok(matchPath('sub/*/dir2/foo', 'sub/dir1/dir2/foo'));
  assert.not.ok(matchPath('sub/*', 'sub/a/b'));
  assert.ok(hasWildcard('nomatch*'));
  assert.not.ok(hasWildcard('plain/path'));
});

test('--chmod octal: 0..07777, else BuildKit\'s error text', () => {
  assert.equal(parseModeSpec('0644'), { kind: 'octal', mode: 0o644 });
  assert.equal(parseModeSpec('0'), { kind: 'octal', mode: 0 });
  for (const bad of ['64a', '10000', '08']) {
    assert.throws(() => parseModeSpec(bad), (e: Error) => e.message === `invalid chmod parameter: '${bad}'. it should be octal string and between 0 and 07777`);
  }
});

test('--chmod symbolic matches chmod(1)', () => {
  const f = (spec: string, mode: number, dir = false) => applyModeSpec(parseModeSpec(spec), mode, dir).toString(8);
  assert.is(f('go-w', 0o666), '644');
  assert.is(f('u=rw,g=r,o=r', 0o777), '644');
  assert.is(f('a+X', 0o644), '644');
  assert.is(f('a+X', 0o744), '755');
  assert.is(f('a+X', 0o600, true), '711');
  assert.is(f('u+rw,g+r,o-x,o+w', 0o124), '766');
  assert.is(f('+x', 0o600), '711');
  assert.throws(() => parseModeSpec('u+q'));
});

test.run();
