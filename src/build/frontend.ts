import { DockerfileError, type SourceRange } from '../errors.js';
import { type Instruction, parseInstruction } from '../dockerfile/instructions.js';
import { type DockerfileNode, parseDockerfile } from '../dockerfile/parser.js';
import type { DockerfileDef, Instr, StageDef } from './model.js';

/**
 * Dockerfile text → the engine's model: parse (src/dockerfile), type each
 * instruction, group into stages. Words stay unexpanded.
 */
export function loadDockerfile(text: string, file: string): DockerfileDef {
  const parsed = parseDockerfile(text, { file });
  if (parsed.nodes.length === 0) {
    throw new DockerfileError('file with no instructions', { file, code: 'DOCKERFILE_EMPTY' });
  }
  const metaArgs: DockerfileDef['metaArgs'] = [];
  const stages: StageDef[] = [];
  for (const node of parsed.nodes) {
    const ins = parseInstruction(node, file);
    if (ins.kind === 'FROM') {
      const s: StageDef = { index: stages.length, base: ins.image, range: ins.range, original: ins.original, instructions: [] };
      if (ins.name) s.name = ins.name;
      if (ins.platform) s.platform = ins.platform;
      stages.push(s);
      continue;
    }
    if (stages.length === 0) {
      if (ins.kind !== 'ARG') {
        throw new DockerfileError('no build stage in current context', { file, range: ins.range, instruction: ins.kind });
      }
      for (const a of ins.args) metaArgs.push({ name: a.key, ...(a.value !== undefined ? { value: a.value } : {}), range: ins.range });
      continue;
    }
    stages[stages.length - 1]!.instructions.push(toInstr(ins, file));
  }
  const escape = parsed.escapeToken;
  void escape;
  return {
    file,
    source: parsed.source,
    metaArgs,
    stages,
    parseTrigger(expression: string, range: SourceRange): Instr {
      const sub = parseDockerfile(expression, { file });
      const node: DockerfileNode | undefined = sub.nodes[0];
      if (!node) throw new DockerfileError(`invalid ONBUILD trigger "${expression}"`, { file, range });
      const ins = parseInstruction(node, file);
      if (ins.kind === 'FROM') throw new DockerfileError('FROM isn\'t allowed as an ONBUILD trigger', { file, range });
      const out = toInstr(ins, file);
      out.range = range;
      return out;
    },
  };
}

function toInstr(ins: Exclude<Instruction, { kind: 'FROM' }>, file: string): Instr {
  const b = { range: ins.range, original: ins.original };
  switch (ins.kind) {
    case 'RUN':
      return {
        ...b,
        kind: 'run',
        shell: ins.command.prependShell,
        cmd: ins.command.args,
        heredocs: ins.files.map((f) => ({ name: f.name, content: f.data, expand: f.expand, chomp: f.chomp })),
        mounts: ins.mountSpecs,
        ...(ins.network !== undefined ? { network: ins.network } : {}),
        ...(ins.security !== undefined ? { security: ins.security } : {}),
      };
    case 'CMD':
    case 'ENTRYPOINT':
      return { ...b, kind: ins.kind === 'CMD' ? 'cmd' : 'entrypoint', shell: ins.command.prependShell, args: ins.command.args };
    case 'ENV':
      return { ...b, kind: 'env', pairs: ins.env.map((kv) => [kv.key, kv.value]) };
    case 'LABEL':
      return { ...b, kind: 'label', pairs: ins.labels.map((kv) => [kv.key, kv.value]) };
    case 'ARG':
      return { ...b, kind: 'arg', args: ins.args.map((a) => ({ name: a.key, ...(a.value !== undefined ? { value: a.value } : {}) })) };
    case 'EXPOSE':
      return { ...b, kind: 'expose', ports: ins.ports };
    case 'VOLUME':
      return { ...b, kind: 'volume', paths: ins.volumes };
    case 'USER':
      return { ...b, kind: 'user', user: ins.user };
    case 'WORKDIR':
      return { ...b, kind: 'workdir', path: ins.path };
    case 'SHELL':
      return { ...b, kind: 'shell', shell: ins.shell };
    case 'STOPSIGNAL':
      return { ...b, kind: 'stopsignal', signal: ins.signal };
    case 'MAINTAINER':
      return { ...b, kind: 'maintainer', name: ins.maintainer };
    case 'ONBUILD':
      return { ...b, kind: 'onbuild', expression: ins.expression };
    case 'HEALTHCHECK': {
      const h = ins.health;
      const nz = (n: number) => (n === 0 ? undefined : n);
      return {
        ...b,
        kind: 'healthcheck',
        none: h.test[0] === 'NONE',
        test: h.test,
        ...(nz(h.interval) !== undefined ? { interval: h.interval } : {}),
        ...(nz(h.timeout) !== undefined ? { timeout: h.timeout } : {}),
        ...(nz(h.startPeriod) !== undefined ? { startPeriod: h.startPeriod } : {}),
        ...(nz(h.startInterval) !== undefined ? { startInterval: h.startInterval } : {}),
        ...(nz(h.retries) !== undefined ? { retries: h.retries } : {}),
      };
    }
    case 'COPY':
    case 'ADD': {
      const from = ins.kind === 'COPY' ? ins.from : undefined;
      if (from !== undefined && from.includes('$')) {
        throw new DockerfileError('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', { file, range: ins.range, instruction: ins.kind });
      }
      return {
        ...b,
        kind: ins.kind === 'COPY' ? 'copy' : 'add',
        sources: ins.sources,
        dest: ins.dest,
        heredocs: ins.contents.map((c) => ({ name: c.path, content: c.data, expand: c.expand })),
        ...(from !== undefined ? { from } : {}),
        ...(ins.chown !== undefined ? { chown: ins.chown } : {}),
        ...(ins.chmod !== undefined ? { chmod: ins.chmod } : {}),
        link: ins.link,
        parents: ins.kind === 'COPY' ? ins.parents : false,
        excludes: ins.exclude,
        ...(ins.kind === 'ADD' && ins.checksum !== undefined ? { checksum: ins.checksum } : {}),
        ...(ins.kind === 'ADD' && ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}),
        ...(ins.kind === 'ADD' && ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
      };
    }
  }
}
