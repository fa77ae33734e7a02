import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCacheFrom, parseCacheTo } from '../../../src/build/cache-spec.js';
import { UsageError } from '../../../src/errors.js';

function refused(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, UsageError);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable('expected a UsageError');
}

test('bare REF is a registry ref, normalised', () => {
  assert.equal(parseCacheFrom('127.0.0.1:5000/app:cache'), { type: 'registry', ref: '127.0.0.1:5000/app:cache' });
  assert.equal(parseCacheFrom('app'), { type: 'registry', ref: 'docker.io/library/app:latest' });
  assert.equal(parseCacheTo('127.0.0.1:5000/app:cache'), { type: 'registry', ref: '127.0.0.1:5000/app:cache', mode: 'min', ignoreError: false });
});

test('type=registry with mode, compression, compression-level, ignore-error', () => {
  assert.equal(parseCacheTo('type=registry,ref=r.io/a:c,mode=max,compression=zstd,compression-level=5,ignore-error=true'), {
    type: 'registry',
    ref: 'r.io/a:c',
    mode: 'max',
    compression: { compression: 'zstd', level: 5 },
    ignoreError: true,
  });
  assert.equal(parseCacheTo('ref=r.io/a:c'), { type: 'registry', ref: 'r.io/a:c', mode: 'min', ignoreError: false });
  assert.equal(parseCacheTo('type=registry,ref=r.io/a:c,compression=uncompressed').type, 'registry');
  assert.equal(parseCacheFrom('type=registry,ref=r.io/a:c'), { type: 'registry', ref: 'r.io/a:c' });
});

test('type=local dest / src, type=inline', () => {
  assert.equal(parseCacheTo('type=local,dest=/tmp/c,mode=max'), { type: 'local', dest: '/tmp/c', mode: 'max', ignoreError: false });
  assert.equal(parseCacheFrom('type=local,src=/tmp/c'), { type: 'local', src: '/tmp/c' });
  assert.equal(parseCacheTo('type=inline'), { type: 'inline' });
});

test('mounts=true (cache mount contents) on registry and local, both directions', () => {
  assert.equal(parseCacheTo('type=local,dest=/tmp/c,mode=max,mounts=true'), { type: 'local', dest: '/tmp/c', mode: 'max', ignoreError: false, mounts: true });
  assert.equal(parseCacheTo('type=registry,ref=r.io/a:c,mounts=true'), { type: 'registry', ref: 'r.io/a:c', mode: 'min', ignoreError: false, mounts: true });
  assert.equal(parseCacheTo('type=registry,ref=r.io/a:c,mounts=false'), { type: 'registry', ref: 'r.io/a:c', mode: 'min', ignoreError: false });
  assert.equal(parseCacheFrom('type=local,src=/tmp/c,mounts=true'), { type: 'local', src: '/tmp/c', mounts: true });
  assert.equal(parseCacheFrom('type=registry,ref=r.io/a:c,mounts=true'), { type: 'registry', ref: 'r.io/a:c', mounts: true });
  assert.equal(parseCacheFrom('type=registry,ref=r.io/a:c,mounts=false'), { type: 'registry', ref: 'r.io/a:c' });
});

test('unknown keys, types and values are refused clearly', () => {
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,bogus=1'), /unknown attribute "bogus" for type=registry/);
  refused(() => parseCacheFrom('type=registry,ref=r.io/a:c,mode=max'), /unknown attribute "mode"/);
  refused(() => parseCacheFrom('type=local,dest=/x'), /unknown attribute "dest"/);
  refused(() => parseCacheTo('type=local,src=/x'), /unknown attribute "src"/);
  refused(() => parseCacheTo('type=inline,mode=max'), /unknown attribute "mode" for type=inline/);
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,mode=all'), /mode must be min or max/);
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,compression=brotli'), /compression/);
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,compression-level=3'), /compression-level needs compression=/);
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,ignore-error=yes'), /ignore-error must be true or false/);
  refused(() => parseCacheTo('type=registry,ref=r.io/a:c,mounts=yes'), /mounts must be true or false, not "yes"/);
  refused(() => parseCacheFrom('type=local,src=/x,mounts=1'), /mounts must be true or false, not "1"/);
  refused(() => parseCacheTo('type=inline,mounts=true'), /mounts= is not supported for type=inline/);
  refused(() => parseCacheTo('type=gha'), /"gha" is not supported by kiln/);
  refused(() => parseCacheTo('type=floppy'), /unknown cache type "floppy"/);
  refused(() => parseCacheTo('mode=max'), /type= is missing/);
  refused(() => parseCacheTo('type=registry'), /ref= is missing/);
  refused(() => parseCacheTo('type=local'), /dest= is missing/);
  refused(() => parseCacheFrom('type=local'), /src= is missing/);
  refused(() => parseCacheFrom('type=inline'), /type=inline is for --cache-to/);
  refused(() => parseCacheFrom('type=registry,ref=UPPER/Case'), /bad reference "UPPER\/Case"/);
  refused(() => parseCacheFrom('type=registry,ref=a,ref=b'), /"ref" is given twice/);
  refused(() => parseCacheFrom('type=registry,justaword'), /"justaword" is not key=value/);
});

test.run();
