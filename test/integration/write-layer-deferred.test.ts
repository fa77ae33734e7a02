import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openContentStore } from '../../src/content/index.js';
import { changesFromTree } from '../../src/layer/walk-tree.js';
import { writeLayer, writeLayerDeferred } from '../../src/layer/write-layer.js';

/**
 * A small layer is written in two halves (tar and diffId now, compressed blob in the
 * background). It must be the very blob writeLayer writes; a layer over the limit is written
 * at once, in one pass, and is that blob too.
 */
const test = suite('layer: deferred write');
let base = '';
let src = '';

test.before(() => {
  base = mkdtempSync(join(tmpdir(), 'kiln-deferred-'));
  src = join(base, 'src');
  mkdirSync(join(src, 'app/data'), { recursive: true });
  writeFileSync(join(src, 'app/main.txt'), 'hello\n'.repeat(5000));
  writeFileSync(join(src, 'app/data/blob'), randomBytes(3 * 1024 * 1024));
  symlinkSync('main.txt', join(src, 'app/link'));
});
test.after(() => rmSync(base, { recursive: true, force: true }));

test('the same diffId, blob and descriptor as writeLayer, for gzip and zstd', async () => {
  const changes = await changesFromTree(src);
  for (const compression of ['gzip', 'zstd'] as const) {
    const whole = await writeLayer(openContentStore(join(base, `whole-${compression}`)), { root: src, changes, compression, sourceDateEpoch: 1_700_000_000 });
    const store = openContentStore(join(base, `deferred-${compression}`));
    const d = await writeLayerDeferred(store, { root: src, changes, compression, sourceDateEpoch: 1_700_000_000 }, 64 * 1024 * 1024);
    assert.instance(d.descriptor, Promise, 'under the limit: compressed in the background');
    assert.is(d.diffId, whole.diffId);
    assert.is(d.uncompressedSize, whole.uncompressedSize);
    assert.is(d.mediaType, whole.descriptor.mediaType);
    assert.equal(await d.descriptor, whole.descriptor);
    assert.ok(await store.stat(whole.descriptor.digest), 'the blob is in the store');
  }
});

test('over the limit: written now, in one pass, the same blob as writeLayer', async () => {
  const changes = await changesFromTree(src);
  const whole = await writeLayer(openContentStore(join(base, 'whole-over')), { root: src, changes, compression: 'gzip' });
  const store = openContentStore(join(base, 'over'));
  const d = await writeLayerDeferred(store, { root: src, changes, compression: 'gzip' }, 1024 * 1024);
  assert.not.instance(d.descriptor, Promise, 'already written');
  assert.equal(d.descriptor, whole.descriptor);
  assert.is(d.diffId, whole.diffId);
  assert.is(d.uncompressedSize, whole.uncompressedSize);
  assert.ok(await store.stat(whole.descriptor.digest), 'the blob is in the store');
});

test.run();
