/**
 * End-to-end builds, e2e-cases.md sections C (ENV, config fields, SHELL,
 * CMD/ENTRYPOINT) and D (WORKDIR, USER). See e2e-harness.ts for validation.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildCase, buildFails, closeEnv, e2eEnv, type E2EEnv } from './e2e-harness.js';

const t = suite('e2e-config');
let env: E2EEnv;
t.before(async () => {
  env = await e2eEnv();
});
t.after(async () => {
  await closeEnv();
});

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

t('E2E-26 how ENV values are quoted and substituted', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
ENV foo zzz
ENV bar \${foo}
ENV abc1='$foo'
ENV env1=$foo env2=\${foo} env3="$foo" env4="\${foo}"
ENV abc2="\\$foo"
ENV foo2="abc\\def" foo3="abc\\\\def" foo4='abc\\\\def'
RUN [ "$abc1" = '$foo' ] && [ "$abc2" = '$foo' ] && [ "$foo2" = 'abc\\def' ] && [ "$foo3" = 'abc\\def' ] && [ "$foo4" = 'abc\\\\def' ]
`,
  });
  const e = r.config.config!.Env!;
  for (const x of ['bar=zzz', 'env1=zzz', 'env2=zzz', 'env3=zzz', 'env4=zzz', 'abc1=$foo', 'foo=zzz']) assert.ok(e.includes(x), `${x} in ${JSON.stringify(e)}`);
});

t('E2E-27 variables expand in WORKDIR, COPY, EXPOSE, USER, VOLUME, LABEL', async () => {
  const r = await buildCase(env, {
    ctx: { bar: 'bar-contents' },
    dockerfile: `FROM busybox
ENV FOO=bar DIR=/work U=daemon P="3000 4000/udp"
WORKDIR $DIR
COPY $FOO baz
EXPOSE $P
EXPOSE 5000 6000/UDP
VOLUME \${DIR}/data
LABEL dir=$DIR
USER \${U}
`,
  });
  assert.is(await r.read('work/baz'), 'bar-contents');
  const c = r.config.config!;
  assert.is(c.WorkingDir, '/work');
  assert.equal(Object.keys(c.ExposedPorts!).sort(), ['3000/tcp', '4000/udp', '5000/tcp', '6000/udp']);
  assert.ok(c.Volumes!['/work/data']);
  assert.is(c.Labels!.dir, '/work');
  assert.is(c.User, 'daemon');
});

t('E2E-28 shell-form ENTRYPOINT on scratch; default PATH', async () => {
  const r = await buildCase(env, { ctx: {}, dockerfile: `FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n` });
  assert.equal(r.config.config!.Entrypoint, ['/bin/sh', '-c', 'foo bar']);
  assert.equal(r.config.config!.Env, [PATH]);
  assert.not.ok(r.config.config!.Cmd);
  assert.is(r.manifest.layers.length, 1);
});

t('E2E-29 SHELL changes shell forms and is inherited', async () => {
  const i1 = await buildCase(env, { dockerfile: `FROM busybox\nSHELL ["ls"]\n` });
  assert.equal(i1.config.config!.Shell, ['ls']);
  const n1 = i1.result.names[0]!;
  const i2 = await buildCase(env, { dockerfile: `FROM ${n1}\nRUN -l\n` });
  assert.ok(i2.log.includes('total '), 'RUN -l ran ls -l');
  const i3 = await buildCase(env, { dockerfile: `FROM ${i2.result.names[0]}\nENTRYPOINT my entrypoint\n` });
  assert.equal(i3.config.config!.Entrypoint, ['ls', 'my entrypoint']);
  assert.not.ok(i3.config.config!.Cmd);
  await buildFails(env, { dockerfile: `FROM busybox\nSHELL ["/bin/sh","-euxc"]\nRUN false\n` }, 'did not complete successfully');
  await buildFails(env, { dockerfile: `FROM busybox\nSHELL /bin/sh -c\n` }, 'SHELL requires the arguments to be in JSON form');
});

t('E2E-30 exec vs shell form for CMD/ENTRYPOINT; clearing them; malformed JSON', async () => {
  const a = await buildCase(env, { dockerfile: `FROM busybox\nCMD ["echo","cmd"]\n` });
  assert.equal(a.config.config!.Cmd, ['echo', 'cmd']);
  const b = await buildCase(env, { dockerfile: `FROM busybox\nCMD echo cmd\n` });
  assert.equal(b.config.config!.Cmd, ['/bin/sh', '-c', 'echo cmd']);
  const base = await buildCase(env, { dockerfile: `FROM busybox\nENTRYPOINT ["/bin/echo"]\n` });
  const c = await buildCase(env, { dockerfile: `FROM ${base.result.names[0]}\nENTRYPOINT []\n` });
  assert.equal(c.config.config!.Entrypoint ?? [], []);
  const d = await buildCase(env, { dockerfile: `FROM busybox\nENTRYPOINT ["/bin/sh"]\nCMD []\n` });
  assert.equal(d.config.config!.Cmd ?? [], []);
  // Not valid JSON (text after the array): shell form, as BuildKit since moby/buildkit#5107.
  const e = await buildCase(env, { dockerfile: `FROM busybox\nENTRYPOINT []random string\n` });
  assert.equal(e.config.config!.Entrypoint, ['/bin/sh', '-c', '[]random string']);
  await buildFails(env, { dockerfile: `FROM busybox\nRUN ["echo","hello"]this is invalid\n` }, 'this is invalid');
  await buildCase(env, { dockerfile: `FROM busybox\nENTRYPOINT ["/nosuchcmd"]\nRUN ["ls"]\n` });
});

t('E2E-31 metadata instructions end up in the config', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
LABEL foo=bar "with space"="v 1"
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=5s --timeout=3s --retries=4 --start-period=10s CMD ["true"]
VOLUME ["/data", "/logs"]
MAINTAINER someone
`,
    opts: { labels: { foo: 'cli' } },
  });
  const c = r.config.config!;
  assert.equal(c.Labels, { foo: 'cli', 'with space': 'v 1' }, '--label beats the Dockerfile');
  assert.is(c.StopSignal, 'SIGKILL');
  assert.equal(c.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Timeout: 3e9, StartPeriod: 10e9, Retries: 4 });
  assert.ok(c.Volumes!['/data'] && c.Volumes!['/logs']);
  assert.is(r.config.author, 'someone');
  const s = await buildCase(env, { dockerfile: `FROM busybox\nHEALTHCHECK CMD curl -f x || exit 1\n` });
  assert.equal(s.config.config!.Healthcheck!.Test, ['CMD-SHELL', 'curl -f x || exit 1']);
  const n = await buildCase(env, { dockerfile: `FROM busybox\nHEALTHCHECK NONE\n` });
  assert.equal(n.config.config!.Healthcheck!.Test, ['NONE']);
  const plain = await buildCase(env, { dockerfile: `FROM busybox\nLABEL foo=bar\n` });
  assert.is(plain.config.config!.Labels!.foo, 'bar');
});

t('E2E-32 metadata-only steps add no layers', async () => {
  const base = await buildCase(env, { dockerfile: `FROM busybox\n` });
  const r = await buildCase(env, { dockerfile: `FROM busybox\nENV A=1\nLABEL b=2\nCMD ["sh"]\n` });
  assert.equal(r.manifest.layers.map((l) => l.digest), base.manifest.layers.map((l) => l.digest));
  const added = r.config.history!.slice(base.config.history!.length);
  assert.is(added.length, 3);
  assert.ok(added.every((h) => h.empty_layer === true));
  const s = await buildCase(env, { dockerfile: `FROM scratch\nENV A=1\n` });
  assert.is(s.manifest.layers.length, 0);
});

t('E2E-33 WORKDIR creates directories; relative WORKDIR; relative COPY destinations', async () => {
  await buildCase(env, {
    ctx: { foo: 'hello' },
    dockerfile: `FROM busybox
WORKDIR /test1
WORKDIR test2
RUN [ "$PWD" = /test1/test2 ]
COPY foo ./
ADD foo ./bar/baz
WORKDIR ..
COPY foo ./
WORKDIR /test5/test6
COPY foo ../
RUN [ "$(cat /test1/test2/foo)" = hello ] && [ "$(cat /test1/test2/bar/baz)" = hello ] && [ "$(cat /test1/foo)" = hello ] && [ "$(cat /test5/foo)" = hello ]
`,
  });
  const s = await buildCase(env, { dockerfile: `FROM scratch\nWORKDIR /foo\n` });
  assert.is(s.manifest.layers.length, 1);
  const { stat } = await import('node:fs/promises');
  assert.ok((await stat(`${await s.fs()}/foo`)).isDirectory());
});

t('E2E-34 WORKDIR creates the directory as the current USER; existing keeps its owner', async () => {
  await buildCase(env, {
    dockerfile: `FROM busybox
RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group
RUN mkdir /existing && chown 1:1 /existing
USER user
WORKDIR /mydir
RUN [ "$(stat -c '%U %G' /mydir)" = "user user" ]
WORKDIR /existing
RUN [ "$(stat -c '%u %g' /existing)" = "1 1" ]
`,
  });
});

t('E2E-35 USER forms and what the process gets', async () => {
  const r = await buildCase(env, {
    dockerfile: `FROM busybox
RUN [ "$(id)" = "uid=0(root) gid=0(root) groups=0(root),10(wheel)" ]
RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && echo 'dockerio:x:1001:' >> /etc/group && echo 'supplementary:x:1002:dockerio' >> /etc/group
USER dockerio
RUN [ "$(id -u):$(id -g):$(id -G)" = "1001:1001:1001 1002" ]
USER dockerio:supplementary
RUN [ "$(id -u):$(id -g):$(id -G)" = "1001:1002:1002" ]
USER 1001:1002
RUN [ "$(id -u):$(id -g)" = "1001:1002" ]
USER 1234
RUN [ "$(id)" = "uid=1234 gid=0(root) groups=0(root)" ]
USER 1042:1043
RUN [ "$(id -u):$(id -g):$(id -G)" = "1042:1043:1043" ]
USER daemon
RUN [ "$(id)" = "uid=1(daemon) gid=1(daemon) groups=1(daemon)" ]
FROM scratch
USER nobody
`,
  });
  assert.is(r.config.config!.User, 'nobody');
});

t.run();
