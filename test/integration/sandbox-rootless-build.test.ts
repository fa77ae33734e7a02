/**
 * The "must show", end to end through the CLI: a real non-root user
 * (useradd, with a subuid range) runs `kiln build`; kiln re-executes itself in
 * its user namespace; RUN chowns files to 1000:1000 and 65534:65534 and the
 * image's layer records that ownership; a RUN --mount=type=secret value is
 * nowhere in the store, the pushed image (registry storage) or the logs.
 * Needs root (useradd) and a build (`npm run build`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startRegistry } from '../helpers/registry.js';
import { kilnBin } from '../helpers/repo.js';

const SECRET = `S3CR3T-${process.pid}-${Date.now().toString(36)}-VALUE`;
const user = `kilnrb${process.pid % 100000}`;
let work: string;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Every file's bytes, gunzipped when gzip: where a leaked secret would show. */
function contents(dir: string): { path: string; bytes: Buffer }[] {
  return files(dir).map((path) => {
    const raw = readFileSync(path);
    let bytes = raw;
    if (raw[0] === 0x1f && raw[1] === 0x8b) {
      try {
        bytes = Buffer.concat([raw, gunzipSync(raw)]);
      } catch {
        // not really gzip
      }
    }
    return { path, bytes };
  });
}

/** (name, uid, gid) of every entry of every tar layer under dir. */
function tarEntries(dir: string): { name: string; uid: number; gid: number }[] {
  const out: { name: string; uid: number; gid: number }[] = [];
  for (const f of files(dir)) {
    const head = readFileSync(f).subarray(0, 2);
    if (head[0] !== 0x1f || head[1] !== 0x8b) continue;
    let listing = '';
    try {
      listing = execFileSync('tar', ['-tzvf', f, '--numeric-owner'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    } catch {
      continue;
    }
    for (const line of listing.split('\n')) {
      const m = /^\S+\s+(\d+)\/(\d+)\s+\d+\s+\S+\s+\S+\s+(.+)$/.exec(line);
      if (m) out.push({ name: m[3]!.replace(/\/$/, ''), uid: Number(m[1]), gid: Number(m[2]) });
    }
  }
  return out;
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-rbuild-'));
  await chmod(work, 0o755);
});
test.after(async () => {
  spawnSync('usermod', ['--del-subuids', '1-4294967294', '--del-subgids', '1-4294967294', user]);
  spawnSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
  await rm(work, { recursive: true, force: true });
});

test('a rootless build chowns to 1000 and 65534 for real, and its secret leaks nowhere', async () => {
  assert.ok(process.getuid?.() === 0, 'run as root: the test creates a user');
  execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
  execFileSync('usermod', ['--del-subuids', '1-4294967294', '--del-subgids', '1-4294967294', user]);
  const start = 800000 + (process.pid % 40) * 65536;
  execFileSync('usermod', ['--add-subuids', `${start}-${start + 65535}`, '--add-subgids', `${start}-${start + 65535}`, user]);
  const uid = Number(execFileSync('id', ['-u', user]).toString());
  const gid = Number(execFileSync('id', ['-g', user]).toString());

  const ctx = join(work, 'ctx');
  const kilnRoot = join(work, 'kiln');
  const secretFile = join(work, 'secret.txt');
  execFileSync('mkdir', ['-p', ctx, kilnRoot]);
  await copyFile('/bin/busybox', join(ctx, 'busybox'));
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      'FROM scratch',
      'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /a /b && /bin/busybox chown 1000:1000 /a && /bin/busybox chown 65534:65534 /b && /bin/busybox stat -c \'%n %u:%g\' /a /b"]',
      'RUN --mount=type=secret,id=tok,required=true ["/bin/busybox", "sh", "-c", "/bin/busybox grep -q ^S3CR3T- /run/secrets/tok && /bin/busybox echo secret-seen > /seen"]',
      '',
    ].join('\n'),
  );
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  for (const p of [ctx, join(ctx, 'busybox'), join(ctx, 'Dockerfile'), kilnRoot, secretFile]) await chown(p, uid, gid);

  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/rootless/build:1`;
    const r = spawnSync(
      'setpriv',
      ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', process.execPath, kilnBin, 'build', '--progress', 'plain',
        '--secret', `id=tok,src=${secretFile}`, '-t', ref, '--push', '--insecure-registry', reg.host, ctx],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: `/home/${user}`, KILN_ROOT: kilnRoot }, cwd: ctx, timeout: 120_000 },
    );
    const logs = r.stdout.toString() + r.stderr.toString();
    assert.is(r.status, 0, logs);
    assert.match(logs, /\/a 1000:1000/);
    assert.match(logs, /\/b 65534:65534/);
    assert.not.match(logs, /single-id/);

    // In the image: the layer records the namespace's ids.
    const entries = tarEntries(kilnRoot);
    assert.ok(entries.some((e) => e.name === 'a' && e.uid === 1000 && e.gid === 1000), JSON.stringify(entries));
    assert.ok(entries.some((e) => e.name === 'b' && e.uid === 65534 && e.gid === 65534), JSON.stringify(entries));
    assert.ok(entries.some((e) => e.name === 'seen'), 'the secret step ran');
    assert.not.ok(entries.some((e) => e.name.startsWith('run')), 'secret mountpoint in a layer');
    // On the host, kiln's files belong to the user's range, not to root.
    const st = statSync(kilnRoot);
    assert.is(st.uid, uid);

    // The secret value: not in the logs, the store, or the registry's storage.
    assert.not.ok(logs.includes(SECRET), 'secret in the logs');
    const leaks = [...contents(kilnRoot), ...contents(reg.storageDir)].filter((f) => f.bytes.includes(SECRET)).map((f) => f.path);
    assert.equal(leaks, [], 'secret found in stored files');
    assert.ok(files(reg.storageDir).length > 3, 'nothing was pushed');
  } finally {
    await reg.stop();
  }
});

test.run();
