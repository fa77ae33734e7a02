import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bwrapVersion, versionBelow } from '../../../src/sandbox/bwrap.js';
import { which } from '../../../src/util/which.js';

test('version comparison', () => {
  assert.ok(versionBelow([0, 4, 1], [0, 5, 0]));
  assert.ok(versionBelow([0, 7, 9], [0, 8, 0]));
  assert.not.ok(versionBelow([0, 8, 0], [0, 8, 0]));
  assert.not.ok(versionBelow([1, 0, 0], [0, 8, 0]));
});

test('the installed bwrap reports a version kiln accepts', async () => {
  const bin = which('bwrap');
  assert.ok(bin, 'bubblewrap is installed (CI installs it)');
  const v = await bwrapVersion(bin!);
  assert.not.ok(versionBelow(v, [0, 5, 0]), v.join('.'));
});

test.run();
