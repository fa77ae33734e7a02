/**
 * SIGINT/SIGTERM to kiln stop the step's whole process tree and leave no
 * mounts, placeholders or temp dirs behind (interruptOnSignals + executors),
 * for every executor that works here. Runs a compiled runner (npm run build).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bwrapWorks } from '../../src/sandbox/host-profile.js';
import { which } from '../../src/util/which.js';
import { repoRoot } from '../helpers/repo.js';
import { makeRootfs } from '../helpers/rootfs.js';

const dist = join(repoRoot, 'dist/src/sandbox');
const executors: string[] = [];
if (which('bwrap') && (await bwrapWorks()).ok) executors.push('bwrap');
if (process.getuid?.() === 0 && which('runc')) executors.push('runc');
if (process.getuid?.() === 0) executors.push('chroot');

function processesWith(marker: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

for (const [i, name] of executors.entries()) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    if (i > 0 && sig === 'SIGTERM') continue; // SIGTERM once is enough
    test(`${sig} stops a ${name} step's whole tree and cleans up`, async () => {
      const rootfs = await makeRootfs();
      const marker = `7${Math.floor(Math.random() * 1e6)}.5`;
      const runner = join(tmpdir(), `kiln-int-${process.pid}-${name}.mjs`);
      const cls = { bwrap: 'BwrapExecutor', runc: 'RuncExecutor', chroot: 'ChrootExecutor' }[name]!;
      await writeFile(
        runner,
        [
          `import { ${cls} } from ${JSON.stringify(join(dist, `${name}.js`))};`,
          `import { interruptOnSignals } from ${JSON.stringify(join(dist, 'interrupt.js'))};`,
          'const it = interruptOnSignals();',
          'try {',
          `  await new ${cls}().run({ rootfs: ${JSON.stringify(rootfs)}, args: ['/bin/sh', '-c', 'sleep ${marker} & (sleep ${marker} & wait) & echo started; wait'],`,
          `    env: ['PATH=/bin'], cwd: '/work', user: { uid: 0, gid: 0, additionalGids: [] }, network: 'none', mounts: [{ type: 'tmpfs', target: '/scratch' },`,
          `    { type: 'file', target: '/run/secrets/s', content: Buffer.from('x') }], onOutput: (_s, c) => process.stdout.write(c) }, { signal: it.signal });`,
          '} catch (err) {',
          '  console.log(JSON.stringify({ code: err.code, message: err.message, signal: it.received() }));',
          "  process.exitCode = it.received() === 'SIGINT' ? 130 : 143;",
          '}',
        ].join('\n'),
      );
      const child = spawn(process.execPath, [runner], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`step did not start: ${out}`)), 20_000);
          child.stdout!.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.includes('started')) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        assert.ok(processesWith(marker).length >= 2);
        const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
        child.kill(sig);
        const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
        assert.is(code, sig === 'SIGINT' ? 130 : 143, out);
        const report = JSON.parse(out.trim().split('\n').pop()!) as { code: string; message: string; signal: string };
        assert.equal(report, { code: 'INTERRUPTED', message: `Build interrupted by ${sig}`, signal: sig });
        assert.equal(processesWith(marker), []);
        for (const d of ['/dev/shm', tmpdir()]) {
          assert.equal(existsSync(d) ? readdirSync(d).filter((n) => n.startsWith(`kiln-run-${child.pid}-`)) : [], [], `temp dir left in ${d}`);
        }
        assert.equal(readdirSync(rootfs).sort(), ['bin', 'etc', 'root', 'tmp', 'work'], 'placeholders left in the rootfs');
        assert.equal(readdirSync(join(rootfs, 'etc')).sort(), ['group', 'passwd']);
        assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(rootfs), 'mount left behind');
      } finally {
        child.kill('SIGKILL');
        await rm(runner, { force: true });
        await rm(rootfs, { recursive: true, force: true });
      }
    });
  }
}

test.run();
