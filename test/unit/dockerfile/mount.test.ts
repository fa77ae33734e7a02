import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MountError, parseCsvRecord, parseMountSpec, parseRamBytes } from '../../../src/dockerfile/mount.js';

test('with an expander every value is expanded, then checked', () => {
  const env: Record<string, string> = { $D: '/cache', $U: '1000', $T: 'cache' };
  const expand = (w: string) => w.replace(/\$[A-Z]/g, (v) => env[v] ?? '');
  assert.equal(parseMountSpec('type=$T,target=$D,uid=$U', expand), {
    type: 'cache', target: '/cache', uid: 1000, sharing: 'shared', readOnly: false, required: false, deferred: [],
  });
  assert.throws(() => parseMountSpec('type=cache,target=/x,uid=$X', expand), (e: unknown) => e instanceof MountError && e.message === 'invalid value  for uid');
});

test('CSV fields: quotes, doubled quotes, bare quotes', () => {
  assert.equal(parseCsvRecord('a,"b,c",d'), ['a', 'b,c', 'd']);
  assert.equal(parseCsvRecord('"x ""y"""'), ['x "y"']);
  assert.equal(parseCsvRecord(''), ['']);
  assert.throws(() => parseCsvRecord('a"b'), /bare " in non-quoted-field/);
  assert.throws(() => parseCsvRecord('"ab'), /extraneous or missing " in quoted-field/);
  assert.equal(parseMountSpec('type=bind,"target=/a,b"').target, '/a,b');
});

test('tmpfs sizes like docker/go-units RAMInBytes', () => {
  assert.is(parseRamBytes('100'), 100);
  assert.is(parseRamBytes('64m'), 64 * 1024 ** 2);
  assert.is(parseRamBytes('1.5GiB'), 1.5 * 1024 ** 3);
  assert.is(parseRamBytes('2 kb'), 2048);
  assert.throws(() => parseRamBytes('lots'));
  assert.throws(() => parseMountSpec('type=tmpfs,target=/t,size=lots'), /invalid value for size: lots/);
});

test.run();
