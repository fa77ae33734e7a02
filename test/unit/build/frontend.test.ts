import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadDockerfile } from '../../../src/build/frontend.js';
import { DockerfileError } from '../../../src/errors.js';

test('stages, meta ARGs and instructions, words left unexpanded', () => {
  const def = loadDockerfile('ARG BASE=busybox\nFROM ${BASE} AS Build\nENV A=$B\nCOPY --from=x --chmod=755 a b /d/\nRUN --mount=type=cache,target=/c make\nFROM scratch\nCMD ["x"]\n', 'Dockerfile');
  assert.equal(def.metaArgs.map((a) => [a.name, a.value]), [['BASE', 'busybox']]);
  assert.is(def.stages.length, 2);
  assert.is(def.stages[0]!.name, 'build', 'stage names are lower-cased');
  assert.is(def.stages[0]!.base, '${BASE}');
  const [env, copy, run] = def.stages[0]!.instructions;
  assert.equal(env, { ...env!, kind: 'env', pairs: [['A', '$B']] });
  assert.is(copy!.kind, 'copy');
  if (copy!.kind === 'copy') {
    assert.equal(copy.sources, ['a', 'b']);
    assert.is(copy.dest, '/d/');
    assert.is(copy.from, 'x');
    assert.is(copy.chmod, '755');
  }
  assert.is(run!.kind, 'run');
  if (run!.kind === 'run') assert.equal(run.mounts, ['type=cache,target=/c']);
  assert.equal(def.stages[1]!.instructions[0], { ...def.stages[1]!.instructions[0]!, kind: 'cmd', shell: false, args: ['x'] });
});

test('ONBUILD triggers parse back into instructions; FROM is refused', () => {
  const def = loadDockerfile('FROM scratch\n', 'Dockerfile');
  const r = { startLine: 1, endLine: 1 };
  assert.is(def.parseTrigger('RUN echo hi', r).kind, 'run');
  const h = def.parseTrigger('RUN <<EOF\necho "hello world" >> /dest\nEOF', r);
  assert.is(h.kind, 'run');
  if (h.kind === 'run') assert.is(h.heredocs[0]!.content, 'echo "hello world" >> /dest\n');
  assert.throws(() => def.parseTrigger('FROM scratch', r), (e: unknown) => e instanceof DockerfileError);
});

test('front-end errors: empty file, instruction before FROM, COPY --from=$VAR', () => {
  assert.throws(() => loadDockerfile('# nothing\n', 'Dockerfile'), /file with no instructions/);
  assert.throws(() => loadDockerfile('RUN x\n', 'Dockerfile'), /no build stage in current context/);
  assert.throws(() => loadDockerfile('FROM scratch\nCOPY --from=$X a b\n', 'Dockerfile'), /variable expansion is not supported for --from/);
});

test.run();
