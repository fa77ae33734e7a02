import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cacheManifest, decodeCacheDocument, encodeCacheDocument, selectRecords } from '../../../src/build/cache-manifest.js';
import type { CacheRecord } from '../../../src/build/cache-store.js';
import { KilnError } from '../../../src/errors.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import type { Digest } from '../../../src/oci/digest.js';
import { MediaType } from '../../../src/oci/media-types.js';

const h = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const layer = (c: string) => ({ descriptor: { mediaType: MediaType.OciLayerGzip, digest: h(c), size: 10 } as Descriptor, diffId: h(c === 'a' ? 'f' : c === 'b' ? 'e' : 'd') });

function record(key: string, layers: Array<ReturnType<typeof layer>>): CacheRecord {
  return {
    key: h(key),
    parts: { instruction: `RUN ${key}`, parent: 'p', platform: 'linux/amd64', args: {}, sources: { digest: 'sha256:x', files: { 'a.txt': 'abc', 'b.txt': 'def' } } },
    state: {
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history: [{ created_by: key }] },
      layers,
    },
  };
}

const base = layer('a');
const run1 = layer('b');
const copy = layer('c');
const builder = record('1', [base, run1]);
const final = record('2', [base, copy]);
const finalMeta = record('3', [base]);

test('mode=min keeps records whose layers are a prefix of the final image; max keeps all', () => {
  const finalLayers = [base.descriptor, copy.descriptor];
  assert.equal(selectRecords([builder, final, finalMeta], 'min', finalLayers).map((r) => r.key), [h('2'), h('3')]);
  assert.equal(selectRecords([builder, final, finalMeta, final], 'max', finalLayers).map((r) => r.key), [h('1'), h('2'), h('3')]);
});

test('encode lists each blob once and drops per-file digests; decode restores the records', () => {
  const doc = encodeCacheDocument([final, builder]);
  assert.equal(doc.layers.map((l) => l.descriptor.digest), [h('a'), h('b'), h('c')]);
  assert.equal(doc.records.map((r) => r.layers), [[0, 1], [0, 2]]);
  assert.equal(doc.records[0]!.parts.sources, { digest: 'sha256:x', files: {} });
  const back = decodeCacheDocument(JSON.parse(JSON.stringify(doc)), 'test');
  assert.equal(back.map((r) => r.key), [h('1'), h('2')]);
  assert.equal(back[1]!.state, final.state);
  const m = cacheManifest({ mediaType: 'x', digest: h('9'), size: 5 }, doc);
  assert.is(m.config.mediaType, MediaType.KilnCacheConfig);
  assert.equal(m.layers.map((l) => l.digest), [h('a'), h('b'), h('c')]);
});

test('a step config is stored as a delta on the step before it; decode rebuilds it exactly', () => {
  const chain = (key: string, hist: string[], env: string[] | undefined, ls: Array<ReturnType<typeof layer>>): CacheRecord => ({
    ...record(key, ls),
    state: {
      config: { architecture: 'amd64', os: 'linux', ...(env ? { config: { Env: env } } : {}), rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) }, history: hist.map((h) => ({ created_by: h })) },
      layers: ls,
    },
  });
  const r1 = chain('7', ['FROM'], [], [base]);
  const r2 = chain('5', ['FROM', 'ENV A=1', 'RUN b'], ['A=1'], [base, run1]);
  const r3 = chain('6', ['FROM', 'ENV A=1', 'RUN b', 'COPY c'], ['A=1'], [base, run1, copy]);
  const other = { ...chain('4', ['FROM', 'RUN x'], undefined, [base]), state: { ...chain('4', ['FROM', 'RUN x'], undefined, [base]).state, config: { ...chain('4', ['FROM', 'RUN x'], undefined, [base]).state.config, architecture: 'arm64' } } };
  const doc = encodeCacheDocument([r3, other, r2, r1]);
  assert.equal(doc.records.map((r) => r.key), [h('7'), h('4'), h('5'), h('6')], 'by history length, then key');
  assert.ok(doc.records[0]!.config && !doc.records[0]!.delta);
  assert.ok(doc.records[1]!.config && !doc.records[1]!.delta, 'other fields (architecture, no container config): stored whole');
  assert.equal(doc.records[2]!.delta, { from: 0, history: [{ created_by: 'ENV A=1' }, { created_by: 'RUN b' }], config: { Env: ['A=1'] } });
  assert.equal(doc.records[3]!.delta, { from: 2, history: [{ created_by: 'COPY c' }] });
  const back = new Map(decodeCacheDocument(JSON.parse(JSON.stringify(doc)), 'test').map((r) => [r.key, r]));
  for (const r of [r1, r2, r3, other]) {
    assert.equal(back.get(r.key)!.state, r.state);
    assert.is(JSON.stringify(back.get(r.key)!.state.config), JSON.stringify(r.state.config), 'same key order too');
  }
  const bad = JSON.parse(JSON.stringify(doc));
  bad.records[2].delta.from = 2;
  assert.throws(() => decodeCacheDocument(bad, 'x'), /record 2's delta is based on record 2, not an earlier one/);
  bad.records[2].delta.from = 0;
  bad.records[2].delta.history = 'nope';
  assert.throws(() => decodeCacheDocument(bad, 'x'), /record 2 has a malformed delta/);
});

test('decode refuses malformed documents (untrusted input)', () => {
  const good = () => JSON.parse(JSON.stringify(encodeCacheDocument([final]))) as any;
  const bad: Array<[string, (d: any) => unknown]> = [
    ['not a JSON object', () => null],
    ['unknown cache format version 2', (d) => ({ ...d, version: 2 })],
    ['no "layers" or "records" array', (d) => ({ ...d, records: {} })],
    ['layer 0 has a malformed digest', (d) => (d.layers[0].descriptor.digest = 'sha256:xyz', d)],
    ['layer 0 has no valid descriptor', (d) => (d.layers[0].descriptor.size = -1, d)],
    ['record 0 has no valid key', (d) => (d.records[0].key = '../../etc', d)],
    ['record 0 names a layer that is not listed', (d) => (d.records[0].layers = [7], d)],
    ['record 0 has no config or parts', (d) => (delete d.records[0].config, d)],
    ["record 0's config does not match its layers", (d) => (d.records[0].config.rootfs.diff_ids = [], d)],
  ];
  for (const [msg, mutate] of bad) {
    try {
      decodeCacheDocument(mutate(good()), '"r.io/a:c"');
      assert.unreachable(msg);
    } catch (err) {
      assert.instance(err, KilnError);
      assert.is((err as KilnError).code, 'CACHE_INVALID');
      assert.ok((err as Error).message.startsWith('Cannot import build cache from "r.io/a:c": '), (err as Error).message);
      assert.ok((err as Error).message.includes(msg), `${(err as Error).message} ⊇ ${msg}`);
    }
  }
});

test.run();
