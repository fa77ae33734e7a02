import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type LayerListing, judge, literalSources } from '../../../src/build/copy-from-image.js';

/** A listing from "path:type" entries, ".wh." names and "DIR/.wh..wh..opq" markers. */
function layer(...names: string[]): LayerListing {
  const l: LayerListing = { entries: new Map(), whiteouts: new Set(), opaque: new Set(), withChildren: new Set() };
  for (const n of names) {
    const [path, type] = n.split(':') as [string, string | undefined];
    const base = path.split('/').pop()!;
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (base === '.wh..wh..opq') l.opaque.add(dir);
    else if (base.startsWith('.wh.')) l.whiteouts.add(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
    else l.entries.set(path, type ?? 'file');
  }
  for (const p of ['etc/app.conf', 'etc', 'etc/nginx']) {
    for (const k of [...l.entries.keys(), ...l.whiteouts, ...l.opaque]) if (k.startsWith(`${p}/`)) l.withChildren.add(p);
  }
  return l;
}

test('a regular file with every parent listed as a directory settles', () => {
  assert.is(judge(layer('etc:dir', 'etc/app.conf:file'), 'etc/app.conf'), 'file');
});

test('a file whose parent has no directory entry here is unsure (a lower layer may make it a symlink)', () => {
  assert.is(judge(layer('etc/app.conf:file'), 'etc/app.conf'), 'unsure');
});

test('symlinks and hard links, as the source or a parent, are unsure', () => {
  assert.is(judge(layer('etc:dir', 'etc/app.conf:symlink'), 'etc/app.conf'), 'unsure');
  assert.is(judge(layer('etc:dir', 'etc/app.conf:link'), 'etc/app.conf'), 'unsure');
  assert.is(judge(layer('etc:symlink'), 'etc/app.conf'), 'unsure');
});

test('whiteouts and opaque parents hide the path: absent', () => {
  assert.is(judge(layer('etc:dir', 'etc/.wh.app.conf'), 'etc/app.conf'), 'absent');
  assert.is(judge(layer('.wh.etc'), 'etc/app.conf'), 'absent');
  assert.is(judge(layer('etc:dir', 'etc/.wh..wh..opq'), 'etc/app.conf'), 'absent');
  assert.is(judge(layer('.wh..wh..opq'), 'etc/app.conf'), 'absent');
});

test('an entry wins over a whiteout of its parent in the same layer', () => {
  assert.is(judge(layer('.wh.etc', 'etc:dir', 'etc/app.conf:file'), 'etc/app.conf'), 'file');
});

test('directories settle only when an opaque marker hides what is below', () => {
  assert.is(judge(layer('etc:dir', 'etc/nginx:dir', 'etc/nginx/a:file'), 'etc/nginx'), 'unsure');
  assert.is(judge(layer('etc:dir', 'etc/nginx/a:file'), 'etc/nginx'), 'unsure');
  assert.is(judge(layer('etc:dir', 'etc/nginx:dir', 'etc/nginx/.wh..wh..opq', 'etc/nginx/a:file'), 'etc/nginx'), 'dir');
});

test('a layer that does not mention the path leaves it pending', () => {
  assert.is(judge(layer('usr:dir', 'usr/bin:dir', 'etc:dir', 'etc/other:file'), 'etc/app.conf'), 'none');
});

test('literalSources: wildcards, "..", trailing "/" and the root are not literal', () => {
  assert.ok(literalSources(['/etc/app.conf', 'etc/x']));
  for (const s of ['/etc/*.conf', '/etc/a?', '/etc/[ab]', '/etc/', '/', '.', '../x', 'a/../b']) assert.not.ok(literalSources([s]), s);
  assert.not.ok(literalSources([]));
});

test.run();
