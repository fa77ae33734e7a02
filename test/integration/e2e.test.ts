/**
 * End-to-end builds from ../shared/conformance/e2e-cases.md (sections A–D):
 * multi-stage, ARG, ENV/config, WORKDIR/USER. Every build runs for real on the
 * busybox fixture served by a local registry, and every image is validated
 * (digests, sizes, diffIds) and read by skopeo and umoci (see e2e-harness.ts).
 * BuildKit is the reference; divergences are noted at the case.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildCase, buildFails, closeEnv, e2eEnv, type E2EEnv } from './e2e-harness.js';

const t = suite('e2e');
let env: E2EEnv;
t.before(async () => {
  env = await e2eEnv();
});
t.after(async () => {
  await closeEnv();
});

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------- A. Multi-stage ----------------

t('E2E-01 COPY --from a named stage into scratch', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS builder
RUN mkdir -p /out && echo -n built > /out/artifact
FROM scratch
COPY --from=builder /out/artifact /artifact
`,
  });
  assert.is(await r.read('artifact'), 'built');
  assert.is(r.manifest.layers.length, 1);
  const { readdir } = await import('node:fs/promises');
  assert.equal(await readdir(await r.fs()), ['artifact']);
});

t('E2E-02 COPY --from by index and by name, mixed', async () => {
  const r = await buildCase(env, {
    ctx: { foo: 'abc', bar: 'def', 'baz/aa': 'ghi', 'baz/bb': 'jkl' },
    dockerfile: `FROM busybox AS first
COPY foo bar
FROM busybox
COPY baz baz
RUN echo -n mno > baz/cc
FROM busybox
COPY bar /
COPY --from=1 baz sub/
COPY --from=0 bar baz
COPY --from=first bar bay
`,
  });
  assert.is(await r.read('bar'), 'def');
  assert.is(await r.read('sub/aa'), 'ghi');
  assert.is(await r.read('sub/bb'), 'jkl');
  assert.is(await r.read('sub/cc'), 'mno');
  assert.is(await r.read('baz'), 'abc');
  assert.is(await r.read('bay'), 'abc');
});

t('E2E-03 COPY --from an image; a stage name hides an image name', async () => {
  const r = await buildCase(env, { dockerfile: `FROM scratch\nCOPY --from=busybox /etc/passwd /test\n` });
  assert.ok((await r.read('test')).includes('root:x:0:0'));
  const r2 = await buildCase(env, {
    dockerfile: `FROM busybox AS golang
RUN echo -n foo > /go
FROM scratch
COPY --from=golang /go /go
`,
  });
  assert.is(await r2.read('go'), 'foo');
});

t('E2E-04 FROM an earlier stage inherits filesystem, ENV, WORKDIR, USER', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS base
ENV GREETING=hello
WORKDIR /app
RUN echo -n base > marker
USER daemon
FROM base
RUN [ "$(pwd)" = /app ] && [ "$GREETING" = hello ] && [ "$(cat marker)" = base ] && [ "$(id -u)" = 1 ]
`,
  });
  assert.ok(r.config.config!.Env!.includes('GREETING=hello'));
  assert.is(r.config.config!.WorkingDir, '/app');
  assert.is(r.config.config!.User, 'daemon');
});

t('E2E-05 --target picks a stage case-insensitively; unknown target fails', async () => {
  const df = `FROM busybox AS build-env
CMD ["/dev"]
FROM busybox
CMD ["/dist"]
`;
  const a = await buildCase(env, { dockerfile: df, target: 'build-env' });
  assert.equal(a.config.config!.Cmd, ['/dev']);
  const b = await buildCase(env, { dockerfile: df, target: 'BUIld-EnV' });
  assert.equal(b.config.config!.Cmd, ['/dev']);
  const c = await buildCase(env, { dockerfile: df });
  assert.equal(c.config.config!.Cmd, ['/dist']);
  await buildFails(env, { dockerfile: df, target: 'nosuchtarget' }, 'target stage "nosuchtarget" could not be found');
});

t('E2E-06 stages the target does not need never run', async () => {
  const df = `FROM busybox AS unused
RUN echo unused-stage-ran; exit 1
FROM busybox AS needed
RUN echo -n needed > /needed
FROM busybox AS also-unused
RUN exit 1
FROM scratch
COPY --from=needed /needed /
`;
  const r = await buildCase(env, { dockerfile: df });
  assert.is(await r.read('needed'), 'needed');
  assert.not.ok(r.log.includes('unused-stage-ran'));
  const r2 = await buildCase(env, { dockerfile: df, target: 'needed' });
  assert.is(await r2.read('needed'), 'needed');
});

t('E2E-07 stage names are case-insensitive everywhere', async () => {
  const r = await buildCase(env, {
    ctx: { foo: 'foo-contents' },
    dockerfile: `FROM scratch AS STAge0
COPY foo bar
FROM scratch AS staGE1
COPY --from=staGE0 bar baz
FROM scratch
COPY --from=stage1 baz bax
`,
    target: 'Stage1',
  });
  assert.is(await r.read('baz'), 'foo-contents');
});

t('E2E-08 COPY --from a stage defined later is an error', async () => {
  await buildFails(
    env,
    {
      dockerfile: `FROM busybox AS target
COPY --from=build /x /out
FROM busybox AS build
RUN touch /x
FROM target
`,
    },
    'cannot copy from stage',
    'needs to be defined before current stage',
  );
});

t('E2E-09 no variable expansion in --from (COPY and RUN --mount)', async () => {
  await buildFails(env, { dockerfile: `FROM scratch\nARG SRC=build\nCOPY --from=$SRC . .\n` }, 'variable expansion is not supported for --from');
  await buildFails(env, { dockerfile: `FROM busybox\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n` }, "'from' doesn't support variable expansion");
});

t('E2E-10 a global ARG picks the base of an alias stage', async () => {
  const df = `ARG variant=a
FROM busybox AS stage_a
RUN echo -n A > /v
FROM busybox AS stage_b
RUN echo -n B > /v
FROM stage_\${variant} AS picked
FROM scratch
COPY --from=picked /v /v
`;
  const a = await buildCase(env, { dockerfile: df });
  assert.is(await a.read('v'), 'A');
  const b = await buildCase(env, { dockerfile: df, buildArgs: { variant: 'b' } });
  assert.is(await b.read('v'), 'B');
  assert.not.ok(b.log.includes('stage_a'), 'stage_a is not built');
});

t('E2E-11 FROM scratch after another stage starts from an empty config', async () => {
  const r = await buildCase(env, { dockerfile: `FROM busybox\nWORKDIR /foo/bar\nFROM scratch\nENV FOO=bar\n` });
  assert.not.ok(r.config.config!.WorkingDir);
  assert.equal(r.config.config!.Env, [PATH, 'FOO=bar']);
  assert.is(r.manifest.layers.length, 0);
});

t('E2E-12 front-end errors found before anything runs', async () => {
  await buildFails(env, { dockerfile: `FROM busybox AS 1\n` }, 'invalid name for build stage');
  await buildFails(env, { dockerfile: `ARG foo=bar\n` }, 'dockerfile contains no stages to build');
  await buildFails(env, { dockerfile: `\n# only a comment\n` }, 'file with no instructions');
  const m = await buildFails(env, { dockerfile: `FROM scratch\nFNTRYPOINT ["x"]\n` }, 'unknown instruction: FNTRYPOINT');
  assert.ok(/did you mean "?ENTRYPOINT"?\?/.test(m), m);
  assert.ok(m.includes(':2'), `points at line 2: ${m}`);
  await buildFails(env, { dockerfile: `FROM busybox\nRUN --mont=target=/x,type=tmpfs true\n` }, 'unknown flag: --mont');
});

t('E2E-13 a relative COPY --from source starts at the stage root, not its WORKDIR', async () => {
  const r = await buildCase(env, {
    ctx: {},
    dockerfile: `FROM busybox AS base
WORKDIR /foo
COPY Dockerfile /
FROM busybox
COPY --from=base Dockerfile .
`,
  });
  assert.ok(await r.exists('Dockerfile'));
});

// ---------------- B. ARG ----------------

t('E2E-14 a global ARG in FROM, overridden with --build-arg', async () => {
  const df = `ARG tag=nosuchtag
FROM busybox:\${tag}
ARG tag
RUN echo -n "$tag" > /tag
`;
  const dfx = df.replace('busybox:', `${env.busybox.replace(/:latest$/, '')}:`);
  const r = await buildCase(env, { dockerfile: dfx, buildArgs: { tag: 'latest' } });
  assert.is(await r.read('tag'), 'latest');
  await buildFails(env, { dockerfile: dfx }, 'nosuchtag');
});

t('E2E-15 a global ARG is invisible in a stage until declared again', async () => {
  const r = await buildCase(env, {
    dockerfile: `ARG NOTE=global
FROM busybox
RUN echo -n "[$NOTE]" > /before
ARG NOTE
RUN echo -n "[$NOTE]" > /after
`,
  });
  assert.is(await r.read('before'), '[]');
  assert.is(await r.read('after'), '[global]');
});

t('E2E-16 an ARG belongs to its stage; ARG values are not kept in the image', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox AS one
ARG stage_1_arg=AAAA
RUN env > /out
FROM busybox
ARG stage_2_arg=BBBB
RUN env > /out
CMD echo "[$stage_2_arg]"
`,
  });
  const out = await r.read('out');
  assert.ok(out.includes('stage_2_arg=BBBB'));
  assert.not.ok(out.includes('stage_1_arg'));
  assert.not.ok(r.config.config!.Env!.some((e) => e.startsWith('stage_2_arg')));
});

t('E2E-17 several keys per ARG, quoted values, expansion inside defaults', async () => {
  const r = await buildCase(env, {
    dockerfile: `ARG a1="foo bar" a2=box
ARG a3="$a2-foo"
FROM busybox
ARG a3 a4="123 456" a1
RUN echo -n "$a1:$a3:$a4" > /out
`,
  });
  assert.is(await r.read('out'), 'foo bar:box-foo:123 456');
});

t('E2E-18 build-arg > stage default > global default', async () => {
  const df = `ARG foo=0 bar=1
FROM busybox
ARG foo=9
ARG bar
RUN echo -n "$foo $bar" > /out
`;
  assert.is(await (await buildCase(env, { dockerfile: df })).read('out'), '9 1');
  assert.is(await (await buildCase(env, { dockerfile: df, buildArgs: { foo: '5' } })).read('out'), '5 1');
  assert.is(await (await buildCase(env, { dockerfile: df, buildArgs: { bar: '88' } })).read('out'), '9 88');
});

t('E2E-19 ENV beats ARG of the same name, whatever their order', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
ARG foo
ENV foo=fromenv
RUN echo -n "$foo" > /out1
ENV bar=fromenv2
ARG bar
RUN echo -n "$bar" > /out2
`,
    buildArgs: { foo: 'fromarg', bar: 'fromarg2' },
  });
  assert.is(await r.read('out1'), 'fromenv');
  assert.is(await r.read('out2'), 'fromenv2');
  assert.ok(r.config.config!.Env!.includes('foo=fromenv'));
  assert.ok(r.config.config!.Env!.includes('bar=fromenv2'));
});

t('E2E-20 an empty ARG is set; an ARG without a value is unset', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
ARG FOO
ARG BAR=
ARG BAZ=""
RUN env > /env.txt && [ "$BAR" = "$BAZ" ]
`,
  });
  const lines = (await r.read('env.txt')).split('\n');
  assert.ok(lines.includes('BAR='));
  assert.not.ok(lines.some((l) => l.startsWith('FOO=')));
});

t('E2E-21 ${VAR:?message} makes the build fail', async () => {
  const df = `ARG FOO=\${FOO:?"custom error"}\nFROM busybox\n`;
  await buildFails(env, { dockerfile: df }, 'FOO: custom error');
  await buildCase(env, { dockerfile: df, buildArgs: { FOO: 'bar' } });
  await buildFails(env, { dockerfile: `FROM scratch\nARG FOO\nARG BAR=\${FOO:?"foo missing"}\n` }, 'FOO: foo missing');
});

t('E2E-22 word modifiers in ARG/ENV/FROM', async () => {
  const df = `ARG image=idle${env.busybox}
FROM \${image#idle} AS build
ARG my_arg
ENV my_arg "my_arg=\${my_arg:-def_val}"
ENV my_trimmed_arg "\${my_arg%%e*}"
COPY show.sh /show.sh
RUN /show.sh $my_arg $my_trimmed_arg
FROM scratch
COPY --from=build /out /out
`;
  const ctx = { 'show.sh': { content: '#!/bin/sh\necho -n "$my_arg $*" > /out\n', mode: 0o755 } };
  assert.is(await (await buildCase(env, { dockerfile: df, ctx })).read('out'), 'my_arg=def_val my_arg=def_val my_arg=d');
  assert.is(await (await buildCase(env, { dockerfile: df, ctx, buildArgs: { my_arg: '' } })).read('out'), 'my_arg=def_val my_arg=def_val my_arg=d');
  assert.is(await (await buildCase(env, { dockerfile: df, ctx, buildArgs: { my_arg: 'override' } })).read('out'), 'my_arg=override my_arg=override my_arg=ov');
});

t('E2E-23 automatic platform ARGs and TARGETSTAGE', async () => {
  const df = `FROM busybox AS base
RUN echo -n "[$TARGETARCH]" > /a1
ARG TARGETARCH TARGETOS TARGETPLATFORM
RUN echo -n "$TARGETOS/$TARGETARCH $TARGETPLATFORM" > /a2
ARG TARGETSTAGE
RUN echo -n "$TARGETSTAGE" > /a3
FROM scratch AS final
COPY --from=base /a1 /a2 /a3 /
`;
  const r = await buildCase(env, { dockerfile: df });
  const arch = process.arch === 'x64' ? 'amd64' : 'arm64';
  assert.is(await r.read('a1'), '[]');
  assert.ok((await r.read('a2')).startsWith(`linux/${arch} linux/${arch}`));
  assert.is(await r.read('a3'), 'final');
  const b = await buildCase(env, { dockerfile: df, target: 'base' });
  assert.is(await b.read('a3'), 'base');
});

t('E2E-24 proxy build args need no declaration and do not break the cache', async () => {
  const df = `FROM busybox AS build
ARG FOO
ARG BAZ=bazcontent
RUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAZ > /out
FROM scratch
COPY --from=build /out /
`;
  const args = { FOO: 'foocontents', http_proxy: 'hpvalue', HTTP_PROXY: 'hpvalue', NO_PROXY: 'npvalue' };
  const r = await buildCase(env, { dockerfile: df, buildArgs: args });
  assert.is(await r.read('out'), 'hpvalue::npvalue::foocontents::bazcontent');
  const r2 = await buildCase(env, { dockerfile: df, contextDir: r.contextDir, buildArgs: { ...args, http_proxy: 'other', HTTP_PROXY: 'other' } });
  assert.is(await r2.read('out'), 'hpvalue::npvalue::foocontents::bazcontent', 'proxy change is a cache hit');
  const r3 = await buildCase(env, { dockerfile: df, contextDir: r.contextDir, buildArgs: { ...args, FOO: 'changed' } });
  assert.is(await r3.read('out'), 'hpvalue::npvalue::changed::bazcontent');
  assert.not.ok(JSON.stringify(r.config.history).includes('hpvalue'), 'no proxy values in history');
});

t('E2E-25 a --build-arg that nothing uses only warns', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
ARG foo
FROM busybox
ARG bar
RUN env > /out
`,
    buildArgs: { baz: 'abc' },
  });
  assert.ok(r.result.warnings.some((w) => w.includes('baz')));
  const out = await r.read('out');
  assert.not.ok(/^bar=/m.test(out));
  assert.not.ok(/^baz=/m.test(out));
});

t.run();
