import { chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runKiln } from '../helpers/run-kiln.js';

/**
 * The kiln bin keeps V8's code cache of the bundle per user. A run writes it when missing,
 * the next run uses it (and so does not write it again), and a cache that is foreign, corrupt
 * or switched off never stops kiln from running.
 */
const test = suite('cli: code cache');
let home = '';

test.before(() => {
  home = mkdtempSync(join(tmpdir(), 'kiln-codecache-'));
});
test.after(() => rmSync(home, { recursive: true, force: true }));

const cacheDir = () => join(home, 'kiln', 'v8');
const files = () => {
  try {
    return readdirSync(cacheDir()).sort();
  } catch {
    return [];
  }
};

async function version(env: Record<string, string> = {}): Promise<void> {
  const r = await runKiln(['--version'], { env: { XDG_CACHE_HOME: home, ...env } });
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^kiln \d+\.\d+\.\d+/);
}

test('written by the first run, used as is by the next', async () => {
  await version();
  const [file] = files();
  assert.ok(file, 'a cache file was written');
  assert.match(file!, /^v\d+\.\d+\.\d+-[a-z0-9]+-\d+-\d+-\d+\.cli\.bin$/);
  const before = statSync(join(cacheDir(), file!));
  assert.ok(before.size > 10_000, `the cache holds the compiled bundle (${before.size} bytes)`);
  assert.is(before.mode & 0o777, 0o600);
  await version();
  const after = statSync(join(cacheDir(), file!));
  assert.is(after.mtimeMs, before.mtimeMs, 'an accepted cache is not rewritten');
  assert.equal(files(), [file]);
});

test('a corrupt cache is refused by V8, the run goes on and replaces it', async () => {
  const [file] = files();
  writeFileSync(join(cacheDir(), file!), Buffer.alloc(4096, 7));
  await version();
  assert.ok(statSync(join(cacheDir(), file!)).size > 10_000, 'rewritten with a real cache');
});

test("a cache owned by another user is never read (it is replaced by this user's)", async () => {
  if (process.getuid?.() !== 0) return; // chown to another user needs root
  const [file] = files();
  const path = join(cacheDir(), file!);
  // A valid cache: were it read, V8 would accept it and it would stay as it is.
  chownSync(path, 65534, 65534);
  await version();
  assert.is(statSync(path).uid, 0, 'not read: our own cache replaced the foreign file');
});

test('KILN_NO_CODE_CACHE=1 neither reads nor writes a cache', async () => {
  rmSync(cacheDir(), { recursive: true, force: true });
  await version({ KILN_NO_CODE_CACHE: '1' });
  assert.equal(files(), []);
});

test.run();
