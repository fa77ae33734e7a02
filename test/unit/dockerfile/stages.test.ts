import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { findStage, parseStages, PLATFORM_ARGS, platformArgs, PROXY_ARGS, resolveMetaArgs, stageArgValue } from '../../../src/dockerfile/stages.js';
import { DockerfileError } from '../../../src/errors.js';

const DF = `# syntax=docker/dockerfile:1
ARG BASE=alpine
ARG TAG=3.19
ARG FULL=\${BASE}:\${TAG}
FROM \${FULL} AS Build
ARG TARGETARCH
RUN make
FROM scratch
COPY --from=build /out /
`;

test('stages: index, lower-cased names, instructions, ranges, meta args, syntax', () => {
  const df = parseStages(DF, { file: 'Dockerfile' });
  assert.is(df.syntax, 'docker/dockerfile:1');
  assert.equal(df.metaArgs.map((a) => a.args[0]!.key), ['BASE', 'TAG', 'FULL']);
  assert.is(df.stages.length, 2);
  assert.equal(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)]), [
    [0, 'build', '${FULL}', ['ARG', 'RUN']],
    [1, undefined, 'scratch', ['COPY']],
  ]);
  assert.equal(df.stages[0]!.range, { startLine: 5, endLine: 7 });
  assert.is(findStage(df, 'BUILD')?.index, 0);
  assert.is(findStage(df, '1')?.index, 1);
  assert.is(findStage(df, 'nope'), undefined);
});

test('meta ARGs resolve in order; build-args override; platform args are global', () => {
  const df = parseStages(DF);
  const pre = platformArgs({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.is(pre.TARGETPLATFORM, 'linux/arm64/v8');
  assert.is(pre.BUILDARCH, 'amd64');
  assert.is(pre.BUILDVARIANT, '');
  assert.equal(Object.keys(pre).sort(), [...PLATFORM_ARGS].sort());
  const scope = resolveMetaArgs(df, new Map([['TAG', 'edge']]), pre);
  assert.is(scope.values.get('FULL'), 'alpine:edge');
  assert.is(scope.values.get('TARGETARCH'), 'arm64');
  assert.equal([...scope.declared], ['BASE', 'TAG', 'FULL']);
  assert.ok(PROXY_ARGS.includes('HTTPS_PROXY') && PROXY_ARGS.includes('no_proxy'));
});

test('a bad meta ARG default is a located DockerfileError', () => {
  const df = parseStages('ARG A="${B:?B is required}"\nFROM x\n');
  assert.throws(() => resolveMetaArgs(df, new Map()), (e: unknown) => e instanceof DockerfileError && e.range?.startLine === 1 && /B is required/.test(e.message));
});

test('stage errors: instruction before FROM, no stage, duplicate names', () => {
  const cases: Array<[string, string, number]> = [
    ['RUN x\nFROM a\n', 'no build stage in current context', 1],
    ['ARG A\n', 'dockerfile contains no stages to build', 1],
    ['FROM a AS x\nFROM b AS X\n', 'duplicate stage name "x"', 2],
  ];
  for (const [text, detail, line] of cases) {
    try {
      parseStages(text, { file: 'Dockerfile' });
      assert.unreachable(text);
    } catch (e) {
      assert.instance(e, DockerfileError);
      assert.is((e as DockerfileError).detail, detail);
      assert.is((e as DockerfileError).range?.startLine, line);
      assert.ok((e as { sources?: Map<string, string> }).sources?.get('Dockerfile') === text, 'the source travels with the error');
    }
  }
});

test('stage ARGs: build-arg, then default, then the meta ARG of the same name', () => {
  const meta = { values: new Map([['V', 'global'], ['TARGETOS', 'linux']]) };
  const up = (w: string) => w.toUpperCase();
  assert.is(stageArgValue({ key: 'V', value: 'd' }, new Map([['V', 'cli']]), meta, up), 'cli');
  assert.is(stageArgValue({ key: 'V', value: 'd' }, new Map(), meta, up), 'D');
  assert.is(stageArgValue({ key: 'V' }, new Map(), meta, up), 'global');
  assert.is(stageArgValue({ key: 'TARGETOS' }, new Map(), meta, up), 'linux');
  assert.is(stageArgValue({ key: 'OTHER' }, new Map(), meta, up), undefined);
});

test.run();
