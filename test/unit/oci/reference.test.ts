import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KilnError } from '../../../src/errors.js';
import { ReferenceFormatError, parseDockerRef, parseNormalizedNamed, parseReference, pathMatch } from '../../../src/oci/reference.js';

// Go's path.Match table (the cases Go's own tests use), run against our implementation.
const matchCases: Array<[string, string, boolean]> = [
  ['abc', 'abc', true], ['*', 'abc', true], ['*c', 'abc', true], ['a*', 'a', true], ['a*', 'abc', true],
  ['a*', 'ab/c', false], ['a*/b', 'abc/b', true], ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true], ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false], ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true], ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true], ['ab[b-d]', 'abc', true], ['ab[e-g]', 'abc', false], ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false], ['ab[^e-g]', 'abc', true], ['a\\*b', 'a*b', true], ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true], ['a[^a]b', 'a☺b', true], ['a???b', 'a☺b', false], ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true], ['*[a-ζ]', 'A', false], ['a?b', 'a/b', false], ['a*b', 'a/b', false],
  ['[\\]a]', ']', true], ['[\\-]', '-', true], ['[x\\-]', 'x', true], ['[x\\-]', '-', true], ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true], ['[\\-x]', '-', true], ['[\\-x]', 'a', false], ['*x', 'xxx', true],
];
test('pathMatch follows Go path.Match', () => {
  for (const [p, n, want] of matchCases) assert.is(pathMatch(p, n), want, `${p} ~ ${n}`);
});

test('pathMatch reports malformed patterns even when the name already failed', () => {
  for (const p of ['[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', '[', '[^', '[^bc', 'a[', 'x*[']) {
    assert.throws(() => pathMatch(p, 'zzz'), (e: unknown) => e instanceof KilnError && (e as Error).message === 'syntax error in pattern', p);
  }
});

test('errors carry the upstream reason and message', () => {
  try {
    parseReference('Uppercase:tag');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ReferenceFormatError);
    assert.is((e as ReferenceFormatError).reason, 'ErrNameContainsUppercase');
    assert.is((e as ReferenceFormatError).code, 'REFERENCE_INVALID');
    assert.is((e as Error).message, 'repository name must be lowercase');
  }
  assert.throws(() => parseDockerRef('Nginx'), /invalid reference format: repository name \(library\/Nginx\) must be lowercase/);
});

test('registry helpers: host, repository, manifest reference, familiar forms', () => {
  const hub = parseDockerRef('library/alpine:3.19');
  assert.is(hub.registryHost, 'registry-1.docker.io');
  assert.is(hub.repository, 'library/alpine');
  assert.is(hub.familiarString(), 'alpine:3.19');
  const local = parseDockerRef('localhost:5000/team/app');
  assert.is(local.registryHost, 'localhost:5000');
  assert.is(local.repository, 'team/app');
  assert.is(local.toString(), 'localhost:5000/team/app:latest');
  assert.is(local.manifestReference, 'latest');
  const pinned = parseNormalizedNamed('busybox:1@sha256:' + 'a'.repeat(64));
  assert.is(pinned.kind, 'canonical');
  assert.is(pinned.manifestReference, 'sha256:' + 'a'.repeat(64));
  assert.is(pinned.trimmed().toString(), 'docker.io/library/busybox');
  assert.is(pinned.withTag('2').toString(), 'docker.io/library/busybox:2@sha256:' + 'a'.repeat(64));
});

test('sha384 and sha512 digests are accepted; wrong lengths are not', () => {
  assert.is(parseReference('a@sha384:' + 'f'.repeat(96)).digest, 'sha384:' + 'f'.repeat(96));
  assert.is(parseReference('a@sha512:' + 'f'.repeat(128)).digest, 'sha512:' + 'f'.repeat(128));
  assert.throws(() => parseReference('a@sha512:' + 'f'.repeat(64)), /invalid checksum digest length/);
  assert.throws(() => parseReference('a@sha256:' + 'F'.repeat(64)), /invalid checksum digest format/);
});

test.run();
