import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { maskedProcPaths, parseSeccompMode, parseSubIds } from '../../../src/sandbox/host-profile.js';

test('subuid ranges are found by name or uid', () => {
  const text = 'alice:100000:65536\nbob:165536:65536\n1001:231072:1000\nalice:300000:10\n#x:1:1\n';
  assert.equal(parseSubIds(text, 'alice', 1000), [{ start: 100000, count: 65536 }, { start: 300000, count: 10 }]);
  assert.equal(parseSubIds(text, 'carol', 1001), [{ start: 231072, count: 1000 }]);
  assert.equal(parseSubIds(text, 'dave', 1002), []);
  assert.equal(parseSubIds('eve:x:10\neve:5:0\n', 'eve', 1), []);
});

test('seccomp mode from /proc/self/status', () => {
  assert.is(parseSeccompMode('Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t1\n'), 2);
  assert.is(parseSeccompMode('Seccomp:\t0\n'), 0);
  assert.is(parseSeccompMode(''), 0);
});

test('a masked /proc is seen in mountinfo', () => {
  const docker = [
    '600 599 0:60 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
    '601 600 0:61 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
    '602 600 0:62 / /proc/sys ro,nosuid - proc proc rw',
  ].join('\n');
  assert.equal(maskedProcPaths(docker), ['/proc/kcore', '/proc/sys']);
  assert.equal(maskedProcPaths('22 1 0:21 / /proc rw - proc proc rw\n23 22 0:22 / /proc/sys/fs/binfmt_misc rw - autofs x rw'), []);
});

test.run();
