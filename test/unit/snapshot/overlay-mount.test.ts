import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OVERLAY_FEATURES, overlayOptions } from '../../../src/snapshot/overlay-mount.js';

test('overlayOptions: lowers topmost first, upper and work, userxattr and whole-file copy-up', () => {
  assert.is(overlayOptions({ lowers: ['.l/a', '.l/b'], upper: 'u', work: 'w' }), `lowerdir=.l/a:.l/b,upperdir=u,workdir=w,${OVERLAY_FEATURES}`);
  assert.is(overlayOptions({ lowers: ['.l/a', '.l/b'] }), `lowerdir=.l/a:.l/b,${OVERLAY_FEATURES}`);
  assert.match(OVERLAY_FEATURES, /userxattr/);
  assert.match(OVERLAY_FEATURES, /metacopy=off/);
  assert.match(OVERLAY_FEATURES, /redirect_dir=nofollow/);
});

test('overlayOptions refuses paths that would split the option string', () => {
  for (const bad of ['a,b', 'a:b', 'a\\b']) {
    assert.throws(() => overlayOptions({ lowers: [bad] }), (e: { code: string }) => e.code === 'SNAPSHOT_BAD_PATH');
    assert.throws(() => overlayOptions({ lowers: ['ok'], upper: bad, work: 'w' }), (e: { code: string }) => e.code === 'SNAPSHOT_BAD_PATH');
  }
});

test.run();
