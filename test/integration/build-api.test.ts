/** The typed Node API (`import { build, buildWithEvents } from 'kiln'`), on the busybox fixture. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type BuildEvent, DockerfileError, buildWithEvents } from '../../src/index.js';
import { pushBusybox } from '../helpers/fixtures.js';
import { type TestRegistry, startRegistry } from '../helpers/registry.js';
import { validateImage } from './e2e-harness.js';

const t = suite('build-api');
let reg: TestRegistry;
let bb: string;
let work: string;

t.before(async () => {
  reg = await startRegistry();
  bb = await pushBusybox(reg);
  work = await mkdtemp(join(tmpdir(), 'kiln-api-'));
});
t.after(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

t('buildWithEvents: progress as an async iterable, descriptors in the result', async () => {
  await writeFile(join(work, 'Dockerfile'), `FROM ${bb}\nRUN echo api-output\nLABEL via=api\n`);
  const { events, result } = buildWithEvents({ context: work, kilnRoot: join(work, 'root'), tags: ['kiln-api/test:1'], labels: { extra: 'yes' } });
  const seen: BuildEvent[] = [];
  for await (const e of events) seen.push(e);
  const r = await result;
  assert.ok(seen.some((e) => e.type === 'step-log' && e.data.includes('api-output')));
  assert.ok(seen.some((e) => e.type === 'step-done' && !e.cached));
  assert.is(r.names[0], 'docker.io/kiln-api/test:1');
  assert.ok(r.manifest.digest.startsWith('sha256:') && r.config.digest === r.imageId);
  assert.is(r.layers.length, 1, 'a RUN that changes no file adds no layer');
  const { config } = await validateImage(join(work, 'root'), r.manifest.digest);
  assert.equal(config.config!.Labels, { via: 'api', extra: 'yes' });
});

t('errors are typed: a Dockerfile error carries file and line', async () => {
  await writeFile(join(work, 'Dockerfile'), 'FROM scratch\nCOPY\n');
  const { events, result } = buildWithEvents({ context: work, kilnRoot: join(work, 'root') });
  for await (const _ of events) void _;
  try {
    await result;
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, DockerfileError);
    assert.is((err as DockerfileError).range?.startLine, 2);
  }
});

t.run();
