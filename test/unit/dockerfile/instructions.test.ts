import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AddInstruction, type ArgInstruction, type CopyInstruction, type EnvInstruction, type ExposeInstruction,
  type FromInstruction, type HealthcheckInstruction, type Instruction, type OnbuildInstruction, parseInstruction,
  type RunInstruction, type ShellInstruction, type VolumeInstruction,
} from '../../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { DockerfileError } from '../../../src/errors.js';

function one<T extends Instruction>(text: string): T {
  const nodes = parseDockerfile(text, { file: 'Dockerfile.test' }).nodes;
  return parseInstruction(nodes[nodes.length - 1]!, 'Dockerfile.test') as T;
}

function refused(text: string): DockerfileError {
  try {
    one(text);
  } catch (e) {
    assert.instance(e, DockerfileError);
    const de = e as DockerfileError;
    assert.is(de.file, 'Dockerfile.test');
    assert.ok(de.range && de.range.startLine >= 1);
    return de;
  }
  return assert.unreachable(`${JSON.stringify(text)} must be refused`) as never;
}

test('FROM: image, lower-cased stage name, --platform', () => {
  const f = one<FromInstruction>('from --platform=$BUILDPLATFORM golang:1.22 As Builder');
  assert.is(f.kind, 'FROM');
  assert.is(f.image, 'golang:1.22');
  assert.is(f.name, 'builder');
  assert.is(f.platform, '$BUILDPLATFORM');
  assert.equal(f.flagsUsed, ['platform']);
  assert.is(one<FromInstruction>('FROM scratch').name, undefined);
});

test('FROM: bad stage names and argument counts are refused', () => {
  assert.match(refused('FROM a AS 1st').detail, 'invalid name for build stage: "1st", name can\'t start with a number or contain symbols');
  assert.match(refused('FROM a AS b$c').detail, 'invalid name for build stage');
  assert.is(refused('FROM a b').detail, 'FROM requires either one or three arguments');
  assert.is(refused('FROM a AS').detail, 'FROM requires either one or three arguments');
  assert.is(refused('FROM --platfrom=linux/amd64 a').detail, 'unknown flag: --platfrom (did you mean --platform?)');
});

test('RUN: shell and exec forms, --network, --security', () => {
  const r = one<RunInstruction>('RUN --network=none --security=insecure echo  "a b"');
  assert.equal(r.command, { prependShell: true, args: ['echo  "a b"'] });
  assert.is(r.network, 'none');
  assert.is(r.security, 'insecure');
  assert.equal(one<RunInstruction>('RUN ["sh", "-c", "x"]').command, { prependShell: false, args: ['sh', '-c', 'x'] });
  assert.is(refused('RUN --network=bridge x').detail, 'invalid network mode "bridge"');
  assert.is(refused('RUN --security=root x').detail, 'security "root" is not valid');
  assert.is(refused('RUN --network x').detail, 'missing a value on flag: --network');
  assert.is(refused('RUN --network=none --network=host x').detail, 'duplicate flag specified: --network');
  assert.is(refused('RUN --device=/dev/fuse x').detail, 'unknown flag: --device');
});

test('RUN --mount: every type with its keys, typed', () => {
  const r = one<RunInstruction>(
    'RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000 ' +
      '--mount=type=secret,id=npmrc,required,env=NPM_TOKEN ' +
      '--mount=type=ssh,id=default,target=/ssh,required=true ' +
      '--mount=type=tmpfs,dst=/tmp,size=64m ' +
      '--mount=from=build,src=/out,target=/in,rw ' +
      'make',
  );
  assert.equal(r.flagsUsed, ['mount']);
  const [cache, secret, ssh, tmpfs, bind] = r.mounts;
  assert.equal(cache, { type: 'cache', target: '/root/.cache', id: 'pip', sharing: 'locked', mode: 0o755, uid: 1000, gid: 1000, readOnly: false, required: false, deferred: [] });
  assert.equal(secret, { type: 'secret', id: 'npmrc', required: true, env: 'NPM_TOKEN', readOnly: true, deferred: [] });
  assert.equal(ssh, { type: 'ssh', id: 'default', target: '/ssh', required: true, readOnly: true, deferred: [] });
  assert.equal(tmpfs, { type: 'tmpfs', target: '/tmp', sizeLimit: 64 * 1024 * 1024, readOnly: false, required: false, deferred: [] });
  assert.equal(bind, { type: 'bind', from: 'build', source: '/out', target: '/in', readOnly: false, required: false, deferred: [] });
  assert.is(r.mountSpecs.length, 5);
});

test('RUN --mount: defaults and deferred variables', () => {
  const [bind] = one<RunInstruction>('RUN --mount=target=/src x').mounts;
  assert.is(bind!.type, 'bind');
  assert.is(bind!.readOnly, true, 'bind mounts are read-only unless rw');
  const [cache] = one<RunInstruction>('RUN --mount=type=cache,target=$HOME/.cache,uid=$UID x').mounts;
  assert.is(cache!.sharing, 'shared');
  assert.is(cache!.target, '$HOME/.cache');
  assert.equal(cache!.deferred, ['target', 'uid']);
  const [later] = one<RunInstruction>('RUN --mount=type=$KIND,id=x,sharing=locked x').mounts;
  assert.equal(later!.deferred, ['type'], 'type-dependent checks wait for the expanded type');
});

test('RUN --mount: invalid specs are refused with BuildKit texts', () => {
  assert.is(refused('RUN --mount=type=cahce,target=/x x').detail, 'unsupported mount type "cahce" (did you mean cache?)');
  assert.is(refused('RUN --mount=type=cache,targte=/x x').detail, "unexpected key 'targte' in 'targte=/x' (did you mean target?)");
  assert.is(refused('RUN --mount=type=bind,target=/x,size=1m x').detail, "unexpected key 'size' for mount type 'bind'");
  assert.is(refused('RUN --mount=type=cache,target=/x,sharing=all x').detail, 'unsupported sharing value "all"');
  assert.is(refused('RUN --mount=type=bind,target=/x,mode=0644 x').detail, 'mode not allowed for "bind" type mounts');
  assert.is(refused('RUN --mount=type=cache,target=/x,uid=me x').detail, 'invalid value me for uid');
  assert.is(refused('RUN --mount=type=cache,target=/x,mode=999 x').detail, 'invalid value 999 for mode');
  assert.is(refused('RUN --mount=type=secret x').detail, 'invalid secret mount. one of source, target required');
  assert.is(refused('RUN --mount=type=secret,id=a,from=b x').detail, 'secret mount should not have a from');
  assert.is(refused('RUN --mount=type=bind,target=/x,from=$STAGE x').detail, "'from' doesn't support variable expansion, define alias stage instead");
  assert.is(refused('RUN --mount=type=cache x').detail, 'mount type "cache" requires a target');
  assert.is(refused('RUN --mount=type=bind,target=/x,ro=maybe x').detail, 'invalid value for ro: maybe');
  assert.is(refused('RUN --mount=type=cache,target=/x,bogus x').detail, "invalid field 'bogus' must be a key=value pair");
  assert.match(refused('RUN --mount=type=bind,target=a\\"b x').detail, 'failed to parse csv mounts: bare " in non-quoted-field');
});

test('CMD and ENTRYPOINT keep shell form as one string', () => {
  assert.equal(one<Instruction & { command: unknown }>('CMD echo   $HOME').command, { prependShell: true, args: ['echo   $HOME'] });
  assert.equal(one<Instruction & { command: unknown }>('ENTRYPOINT []').command, { prependShell: false, args: [] });
  assert.is(refused('CMD --x=1 a').detail, 'unknown flag: --x');
});

test('ENV and LABEL: pairs, legacy form, blank names', () => {
  const e = one<EnvInstruction>('ENV A=1 B="two words" C=');
  assert.equal(e.env, [
    { key: 'A', value: '1', noDelim: false },
    { key: 'B', value: '"two words"', noDelim: false },
    { key: 'C', value: '', noDelim: false },
  ]);
  assert.equal(one<EnvInstruction>('ENV PATH /usr/bin:/bin  x').env, [{ key: 'PATH', value: '/usr/bin:/bin  x', noDelim: true }]);
  assert.is(refused('ENV =x').detail, 'ENV names can not be blank');
  assert.is(refused('LABEL').detail, 'LABEL requires at least one argument');
  assert.is(refused('ENV a=b c').detail, 'Syntax error - can\'t find = in "c". Must be of the form: name=value');
});

test('COPY: sources, dest, every flag typed', () => {
  const c = one<CopyInstruction>('COPY --from=build --chown=1000:1000 --chmod=0644 --link --parents --exclude=*.md --exclude=tmp/ a b /dst/');
  assert.equal(c.sources, ['a', 'b']);
  assert.is(c.dest, '/dst/');
  assert.is(c.from, 'build');
  assert.is(c.chown, '1000:1000');
  assert.is(c.chmod, '0644');
  assert.is(c.link, true);
  assert.is(c.parents, true);
  assert.equal(c.exclude, ['*.md', 'tmp/']);
  const j = one<CopyInstruction>('COPY ["a b", "/c d/"]');
  assert.equal([j.sources, j.dest, j.json], [['a b'], '/c d/', true]);
  assert.is(one<CopyInstruction>('COPY --link=false a b').link, false);
  const empty = one<CopyInstruction>('COPY --from= --chown= a b');
  assert.equal([empty.from, empty.chown], [undefined, undefined], 'an empty value means not given');
  assert.is(refused('COPY --link=maybe a b').detail, 'expecting boolean value for flag --link, not: maybe');
  assert.is(refused('COPY --link= a b').detail, 'missing a value on flag: --link');
  // a malformed marker is an ordinary path, as in BuildKit (MustParseHeredoc)
  const odd = one<CopyInstruction>("COPY <<'EOF /x");
  assert.equal([odd.sources, odd.contents, odd.dest], [["<<'EOF"], [], '/x']);
  assert.is(one<CopyInstruction>("COPY a <<'EOF").dest, "<<'EOF");
  assert.is(refused('COPY --checksum=sha256:00 a b').detail, 'unknown flag: --checksum');
  assert.is(refused('COPY --keep-git-dir a b').detail, 'unknown flag: --keep-git-dir');
});

test('ADD: --checksum, --keep-git-dir, --unpack, --link', () => {
  const a = one<AddInstruction>('ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --link https://x/y.tar.gz /opt/');
  assert.is(a.checksum, 'sha256:abc');
  assert.is(a.keepGitDir, true);
  assert.is(a.unpack, false);
  assert.is(a.link, true);
  assert.is(one<AddInstruction>('ADD a b').unpack, undefined, 'unpack stays unset when not given');
  assert.is(refused('ADD --from=x a b').detail, 'unknown flag: --from');
  assert.is(refused('ADD a').detail, 'ADD requires at least two arguments, but only one was provided. Destination could not be determined');
});

test('EXPOSE sorts, VOLUME trims and refuses empty, single-argument instructions', () => {
  assert.equal(one<ExposeInstruction>('EXPOSE 8080/tcp 443 80/udp').ports, ['443', '80/udp', '8080/tcp']);
  assert.equal(one<VolumeInstruction>('VOLUME ["/a", " /b "]').volumes, ['/a', '/b']);
  assert.is(refused('VOLUME [" "]').detail, 'VOLUME specified can not be an empty string');
  assert.is(refused('USER').detail, 'USER requires exactly one argument');
  assert.is(one<Instruction & { user: string }>('USER a b').user, 'a b', 'USER takes the rest of the line');
  assert.is(refused('STOPSIGNAL').detail, 'STOPSIGNAL requires exactly one argument');
  assert.is(refused('STOPSIGNAL --x=1 TERM').detail, 'unknown flag: --x');
  assert.is(one<Instruction & { path: string }>('WORKDIR /a b').path, '/a b');
});

test('ARG: several keys, optional values kept raw, blank names refused', () => {
  const a = one<ArgInstruction>('ARG A B=2 C="x y"');
  assert.equal(a.args.map(({ key, value }) => ({ key, value })), [
    { key: 'A', value: undefined },
    { key: 'B', value: '2' },
    { key: 'C', value: '"x y"' },
  ]);
  assert.is(refused('ARG =1').detail, 'ARG names can not be blank');
  assert.is(refused('ARG').detail, 'ARG requires at least one argument');
});

test('ONBUILD: expression kept as text, chaining and FROM/MAINTAINER refused', () => {
  const o = one<OnbuildInstruction>('onbuild  RUN echo "hi"');
  assert.is(o.expression, 'RUN echo "hi"');
  assert.is(o.trigger, 'RUN');
  const h = one<OnbuildInstruction>('ONBUILD COPY <<EOF /x\nhello\nEOF\n');
  assert.is(h.expression, 'COPY <<EOF /x\nhello\nEOF');
  assert.is(refused('ONBUILD ONBUILD RUN x').detail, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  assert.is(refused('ONBUILD from x').detail, "FROM isn't allowed as an ONBUILD trigger");
  assert.is(refused('ONBUILD MAINTAINER me').detail, "MAINTAINER isn't allowed as an ONBUILD trigger");
  assert.is(refused('ONBUILD').detail, 'ONBUILD requires at least one argument');
});

test('HEALTHCHECK: durations in ns, retries, NONE, errors', () => {
  const h = one<HealthcheckInstruction>('HEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms --start-interval=1s --retries=3 CMD curl -f http://x/ || exit 1');
  assert.equal(h.health, {
    test: ['CMD-SHELL', 'curl -f http://x/ || exit 1'],
    interval: 90e9, timeout: 3e9, startPeriod: 500e6, startInterval: 1e9, retries: 3,
  });
  assert.equal(one<HealthcheckInstruction>('HEALTHCHECK CMD ["/bin/check", "-q"]').health.test, ['CMD', '/bin/check', '-q']);
  assert.equal(one<HealthcheckInstruction>('healthcheck none').health.test, ['NONE']);
  assert.is(refused('HEALTHCHECK NONE x').detail, 'HEALTHCHECK NONE takes no arguments');
  assert.is(refused('HEALTHCHECK --interval=5s NONE').detail, 'HEALTHCHECK NONE takes no flags');
  assert.is(refused('HEALTHCHECK CONNECT TCP 7000').detail, 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
  assert.is(refused('HEALTHCHECK CMD').detail, 'Missing command after HEALTHCHECK CMD');
  assert.is(refused('HEALTHCHECK --interval=5 CMD x').detail, 'time: missing unit in duration "5"');
  assert.is(refused('HEALTHCHECK --timeout=3x CMD x').detail, 'time: unknown unit "x" in duration "3x"');
  assert.is(refused('HEALTHCHECK --timeout=10us CMD x').detail, 'Interval "timeout" cannot be less than 1ms');
  assert.is(refused('HEALTHCHECK --retries=-1 CMD x').detail, '--retries cannot be negative (-1)');
  assert.is(refused('HEALTHCHECK --retries=two CMD x').detail, 'strconv.ParseInt: parsing "two": invalid syntax');
  assert.is(refused('HEALTHCHECK --intervall=5s CMD x').detail, 'unknown flag: --intervall (did you mean --interval?)');
});

test('SHELL must be JSON', () => {
  assert.equal(one<ShellInstruction>('SHELL ["/bin/bash", "-o", "pipefail", "-c"]').shell, ['/bin/bash', '-o', 'pipefail', '-c']);
  assert.is(refused('SHELL /bin/bash -c').detail, 'SHELL requires the arguments to be in JSON form');
  assert.is(refused('SHELL []').detail, 'SHELL requires at least one argument');
});

test('unknown instructions: original spelling and a suggestion', () => {
  assert.is(refused('FORM alpine').detail, 'unknown instruction: FORM (did you mean "FROM"?)');
  assert.is(refused('cpoy a b').detail, 'unknown instruction: cpoy (did you mean "copy"?)');
  assert.is(refused('XYZZYPLUGH a').detail, 'unknown instruction: XYZZYPLUGH');
});

test('errors carry file, line range and instruction', () => {
  const e = refused('FROM a\nCOPY --chown=1 \\\n  onlyone\n');
  assert.equal(e.range, { startLine: 2, endLine: 3 });
  assert.is(e.instruction, 'COPY');
  assert.is(e.message, 'Dockerfile.test:2: COPY: COPY requires at least two arguments, but only one was provided. Destination could not be determined');
});

test('source ranges include continuation lines and heredoc bodies', () => {
  const nodes = parseDockerfile('FROM a\n\nRUN <<EOF\nx\nEOF\nCOPY a \\\n b\n');
  assert.equal(nodes.nodes.map((n) => parseInstruction(n).range), [
    { startLine: 1, endLine: 1 },
    { startLine: 3, endLine: 5 },
    { startLine: 6, endLine: 7 },
  ]);
});

test.run();
