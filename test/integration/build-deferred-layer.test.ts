import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runBuild } from '../../src/build/engine.js';
import { loadDockerfile } from '../../src/build/frontend.js';
import { defaultRuntime } from '../../src/build/runtime-default.js';
import { openContentStore } from '../../src/content/index.js';
import { writeLayerDeferred } from '../../src/layer/write-layer.js';

/**
 * A step's small layer is compressed in the background while later steps run. When that
 * compression fails, the build must fail (not write an image with a placeholder), and the step
 * must leave no cache record behind.
 */
const test = suite('build: deferred layer compression');
let base = '';

test.before(() => {
  base = mkdtempSync(join(tmpdir(), 'kiln-deferred-build-'));
  mkdirSync(join(base, 'ctx'));
  writeFileSync(join(base, 'ctx', 'a.txt'), 'a\n');
  writeFileSync(join(base, 'ctx', 'b.txt'), 'b\n');
});
test.after(() => rmSync(base, { recursive: true, force: true }));

const text = 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n';

async function build(root: string, failCompression: boolean) {
  const store = openContentStore(root);
  const runtime = defaultRuntime({ store, kilnRoot: root });
  if (failCompression) {
    runtime.writeLayerDeferred = async (s, o, max) => {
      const d = await writeLayerDeferred(s, o, max);
      if (d.descriptor instanceof Promise) d.descriptor = Promise.reject(new Error('no space left on device (test)'));
      return d;
    };
  }
  try {
    const contextDir = join(base, 'ctx');
    return await runBuild(loadDockerfile(text, 'Dockerfile'), runtime, { contextDir, dockerfile: { text, name: 'Dockerfile' }, store, kilnRoot: root });
  } finally {
    await runtime.close();
  }
}

test('a failed background compression fails the build and records nothing', async () => {
  const root = join(base, 'root');
  const err = await build(root, true).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, Error);
  assert.match((err as Error).message, 'no space left on device (test)');
  const ok = await build(root, false);
  assert.is(ok.stats.cached, 0, 'the failed build left no cache record');
  assert.is(ok.layers.length, 2);
  for (const l of ok.layers) {
    assert.ok(l.size > 0 && !l.digest.endsWith('0'.repeat(64)), 'a real descriptor');
    assert.ok(await ok.store.stat(l.digest), 'its blob is in the store');
  }
  const again = await build(root, false);
  assert.is(again.stats.cached, 2, 'the records written in the background are found');
  assert.equal(again.layers, ok.layers);
});

test.run();
