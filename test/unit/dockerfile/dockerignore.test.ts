import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerignoreError, IgnorePattern, PatternMatcher, cleanPath, parseDockerignore, patternToGoRegex, selectDockerignore } from '../../../src/dockerfile/dockerignore.js';

test('selectDockerignore: <Dockerfile>.dockerignore wins, then .dockerignore, else none', () => {
  const files = new Set(['ctx/.dockerignore', 'ctx/build/app.Dockerfile.dockerignore']);
  const exists = (p: string) => files.has(p);
  assert.is(selectDockerignore('ctx/build/app.Dockerfile', 'ctx', exists), 'ctx/build/app.Dockerfile.dockerignore');
  assert.is(selectDockerignore('ctx/Dockerfile', 'ctx/', exists), 'ctx/.dockerignore');
  assert.is(selectDockerignore('x/Dockerfile', 'x', exists), undefined);
});

test('cleanPath follows Go path.Clean', () => {
  assert.is(cleanPath(''), '.');
  assert.is(cleanPath('a//b/./c/..'), 'a/b');
  assert.is(cleanPath('/../a/'), '/a');
  assert.is(cleanPath('../../a'), '../../a');
  assert.is(cleanPath('a/../..'), '..');
});

test('POSIX classes and Perl escapes inside patterns behave as in Go regexp', () => {
  const m = new PatternMatcher(['file[[:digit:]]', 'x[^[:alpha:]]y']);
  assert.ok(m.matches('file7'));
  assert.not.ok(m.matches('fileA'));
  assert.ok(m.matches('x-y'));
  assert.not.ok(m.matches('xay'));
});

test('a pattern valid as a glob but not as a regexp fails at match time, every time', () => {
  const m = new PatternMatcher(['[z-a]x']);
  for (let i = 0; i < 2; i++) assert.throws(() => m.matches('zx'), (e: unknown) => e instanceof DockerignoreError);
});

test('matchesUsingParentResults agrees with matches() along a walk', () => {
  const m = new PatternMatcher(['*', '!src', 'src/etc', '**/*.in', '!keep/**', 'a/b/c']);
  const paths = ['src', 'src/etc', 'src/etc/x', 'src/lib', 'src/lib/y.in', 'keep', 'keep/z', 'a', 'a/b', 'a/b/c', 'a/b/c/d'];
  const info = new Map<string, ReturnType<PatternMatcher['matchesUsingParentResults']>['info']>();
  for (const p of paths) {
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : undefined;
    const r = m.matchesUsingParentResults(p, parent ? info.get(parent) : undefined);
    info.set(p, r.info);
    assert.is(r.excluded, m.matches(p), p);
  }
});

test('parseDockerignore refuses a line longer than Go bufio.Scanner allows', () => {
  assert.throws(() => parseDockerignore('a'.repeat(70000)), (e: unknown) => e instanceof DockerignoreError);
  assert.equal(parseDockerignore('x\n' + 'b'.repeat(1000)), ['x', 'b'.repeat(1000)]);
});


// Differential check: the NFA matcher gives the same answer as a backtracking regexp engine on
// the Go regexp sources patterns compile to (ASCII subset where Go and JS syntax agree).
test('pattern matcher equals regexp matching of the compiled source (random, seed 7)', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['a', 'b', '/', '*', '?', '**', '**/', '[ab]', '[^a]', '\\*', '.', '+', '(', ')'];
  for (let n = 0; n < 4000; n++) {
    const text = Array.from({ length: 1 + rnd(5) }, () => pieces[rnd(pieces.length)]).join('');
    const path = Array.from({ length: rnd(7) }, () => 'ab/.*+()'[rnd(8)]).join('');
    const compiled = patternToGoRegex(text);
    if (compiled.type !== 'regexp') continue;
    const p = new IgnorePattern(text, false);
    assert.is(p.match(path), new RegExp(compiled.source).test(path), `${text} vs ${path} (${compiled.source})`);
  }
});

test.run();
