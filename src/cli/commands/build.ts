import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { SecretSpec } from '../../build/types.js';
import { UsageError } from '../../errors.js';
import type { BuildOptions } from '../../export/build-and-export.js';
import type { Isolation } from '../../sandbox/types.js';
import { type Command, type CommandIO, type ParsedArgs, flagBool, flagList, flagString } from '../command.js';
import { createProgress, parseProgressMode } from '../progress.js';

function keyValues(list: string[], flag: string, io: CommandIO, fromEnv = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq === -1) {
      if (fromEnv) {
        // moby: --build-arg NAME takes NAME's value from the client's environment (skipped when unset).
        const v = io.env[item];
        if (v !== undefined) out[item] = v;
        continue;
      }
      throw new UsageError(`Invalid --${flag} "${item}": expected KEY=VALUE`);
    }
    const k = item.slice(0, eq);
    if (k === '') throw new UsageError(`Invalid --${flag} "${item}": the key is empty`);
    out[k] = item.slice(eq + 1);
  }
  return out;
}

/** `--secret id=x,src=FILE` / `id=x,env=VAR` / `id=x` (env var of the same name). */
function parseSecret(v: string): SecretSpec {
  const spec: Partial<SecretSpec> = {};
  for (const part of v.split(',')) {
    const eq = part.indexOf('=');
    const k = eq === -1 ? part : part.slice(0, eq);
    const val = eq === -1 ? '' : part.slice(eq + 1);
    if (k === 'id') spec.id = val;
    else if (k === 'src' || k === 'source') spec.src = resolve(val);
    else if (k === 'env') spec.env = val;
    else if (k === 'type' && (val === 'file' || val === 'env')) continue;
    else throw new UsageError(`Invalid --secret "${v}": unknown key "${k}"`, { hint: 'Use id=ID,src=FILE or id=ID,env=VAR.' });
  }
  if (!spec.id) {
    if (spec.src) spec.id = spec.src.split('/').pop()!;
    else throw new UsageError(`Invalid --secret "${v}": id= is missing`);
  }
  return spec as SecretSpec;
}

async function readStdinBytes(stdin: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

/** gzip magic, or a ustar header. */
function isArchive(b: Buffer): boolean {
  return (b.length > 2 && b[0] === 0x1f && b[1] === 0x8b) || (b.length >= 262 && b.toString('latin1', 257, 262) === 'ustar');
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export const buildCommand: Command = {
  name: 'build',
  summary: 'Build an image from a Dockerfile',
  usage: 'build [flags] PATH | - (Dockerfile or context tar on stdin)',
  needsNamespace: true,
  details: [
    'PATH is the build context directory; "-" reads a Dockerfile (empty context) or a context tar from stdin.',
    'Outputs (-o): type=image[,name=N][,push=true] (default: tag in the local store), type=oci,dest=F.tar,',
    'type=docker,dest=F.tar, type=local,dest=DIR, type=tar,dest=F.tar, or a bare DIR.',
  ].join('\n'),
  flags: [
    { name: 'tag', short: 't', type: 'string[]', value: 'NAME', description: 'Name the image (repeatable)' },
    { name: 'file', short: 'f', type: 'string', value: 'PATH', description: 'Dockerfile (default PATH/Dockerfile; "-" for stdin)' },
    { name: 'target', type: 'string', value: 'STAGE', description: 'Build this stage (default the last)' },
    { name: 'build-arg', type: 'string[]', value: 'K=V', description: 'Set a build-time variable (K alone: from the environment)' },
    { name: 'build-context', type: 'string[]', value: 'NAME=DIR|docker-image://REF|oci-layout://PATH', description: 'Extra named context for FROM / COPY --from' },
    { name: 'secret', type: 'string[]', value: 'id=ID,src=FILE', description: 'Secret for RUN --mount=type=secret' },
    { name: 'ssh', type: 'string[]', value: 'default', description: 'Forward an SSH agent to RUN --mount=type=ssh: default ($SSH_AUTH_SOCK) or ID=SOCKET' },
    { name: 'platform', type: 'string', value: 'OS/ARCH', description: 'Target platform (default the host)' },
    { name: 'progress', type: 'string', value: 'MODE', description: 'auto, tty, plain, rawjson or quiet', default: 'auto' },
    { name: 'iidfile', type: 'string', value: 'FILE', description: 'Write the image ID (config digest) to FILE' },
    { name: 'metadata-file', type: 'string', value: 'FILE', description: 'Write build metadata (BuildKit keys) as JSON' },
    { name: 'label', type: 'string[]', value: 'K=V', description: 'Set an image label' },
    { name: 'annotation', type: 'string[]', value: 'K=V', description: 'Set a manifest annotation' },
    { name: 'no-cache', type: 'boolean', description: 'Do not use the build cache' },
    { name: 'no-cache-filter', type: 'string[]', value: 'STAGE', description: 'Do not use the cache for these stages' },
    { name: 'cache-from', type: 'string[]', value: 'SPEC', description: 'Import build cache: REF, type=registry,ref=REF or type=local,src=DIR [,mounts=true: also RUN --mount=type=cache contents]' },
    { name: 'cache-to', type: 'string[]', value: 'SPEC', description: 'Export build cache: type=registry,ref=REF[,mode=min|max][,compression=…][,mounts=true], type=local,dest=DIR[,…], type=inline' },
    { name: 'pull', type: 'boolean', description: 'Re-resolve base images from their registry' },
    { name: 'output', short: 'o', type: 'string[]', value: 'SPEC', description: 'Output destination (see below)' },
    { name: 'push', type: 'boolean', description: 'Push the image to its -t names' },
    { name: 'isolation', type: 'string', value: 'MODE', description: 'RUN isolation: auto, bwrap, runc or chroot', default: 'auto' },
    { name: 'jobs', short: 'j', type: 'string', value: 'N', description: 'Stages built in parallel (default: cores)' },
    { name: 'explain', type: 'boolean', description: 'Say for each step: cache hit, or what changed' },
    { name: 'compression', type: 'string', value: 'ALG', description: 'Layer compression: gzip, zstd[,level=N], uncompressed' },
    { name: 'oci-mediatypes', type: 'boolean', description: 'OCI media types (true) or Docker schema2 (false)', default: true },
    { name: 'insecure-registry', type: 'string[]', value: 'HOST', description: 'Allow plain HTTP for this registry' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the image ID' },
  ],
  async run(args: ParsedArgs, io: CommandIO): Promise<number> {
    if (args.positionals.length !== 1) {
      throw new UsageError(`"kiln build" requires exactly 1 argument (the context PATH or "-"), got ${args.positionals.length}`, { hint: 'Run "kiln build --help".' });
    }
    const ctxArg = args.positionals[0]!;
    const file = flagString(args, 'file');
    const opts: BuildOptions = {};
    if (ctxArg === '-') {
      const data = await readStdinBytes(io.stdin);
      const { mkdtemp } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      opts.context = await mkdtemp(resolve(tmpdir(), 'kiln-stdin-ctx-'));
      if (isArchive(data)) {
        // A context tar (plain or gzip) on stdin, as `docker build - < ctx.tar`.
        const { execFile } = await import('node:child_process');
        await new Promise<void>((res, rej) => {
          const gz = data[0] === 0x1f && data[1] === 0x8b;
          const c = execFile('tar', ['-x', ...(gz ? ['-z'] : []), '-C', opts.context!, '-f', '-'], { timeout: 600_000 }, (err, _o, stderr) =>
            err ? rej(new UsageError(`Cannot read the build context tar from stdin: ${stderr.trim() || err.message}`)) : res(),
          );
          c.stdin!.end(data);
        });
        opts.file = resolve(opts.context, file ?? 'Dockerfile');
      } else {
        if (file !== undefined && file !== '-') throw new UsageError('Cannot use -f with context "-": the Dockerfile comes from stdin');
        opts.dockerfileText = data.toString('utf8');
      }
    } else {
      opts.context = resolve(io.cwd, ctxArg);
      if (file === '-') opts.dockerfileText = await readStdin(io.stdin);
      else if (file !== undefined) opts.file = resolve(io.cwd, file);
    }
    opts.tags = flagList(args, 'tag');
    const target = flagString(args, 'target');
    if (target !== undefined) opts.target = target;
    opts.buildArgs = keyValues(flagList(args, 'build-arg'), 'build-arg', io, true);
    opts.buildContexts = keyValues(flagList(args, 'build-context'), 'build-context', io);
    opts.secrets = flagList(args, 'secret').map(parseSecret);
    opts.ssh = flagList(args, 'ssh');
    const platform = flagString(args, 'platform');
    if (platform !== undefined) {
      if (platform.includes(',')) throw new UsageError(`Cannot build for several platforms at once ("${platform}") yet`, { hint: 'Build each platform separately.' });
      opts.platform = platform;
    }
    opts.labels = keyValues(flagList(args, 'label'), 'label', io);
    opts.annotations = keyValues(flagList(args, 'annotation'), 'annotation', io);
    opts.noCache = flagBool(args, 'no-cache');
    opts.noCacheFilter = flagList(args, 'no-cache-filter').flatMap((s) => s.split(',')).filter(Boolean);
    opts.pull = flagBool(args, 'pull');
    opts.cacheFrom = flagList(args, 'cache-from');
    opts.cacheTo = flagList(args, 'cache-to');
    const outputs = flagList(args, 'output');
    opts.outputs = outputs;
    opts.push = flagBool(args, 'push');
    const iso = flagString(args, 'isolation') ?? 'auto';
    if (!['auto', 'bwrap', 'runc', 'chroot'].includes(iso)) throw new UsageError(`Invalid --isolation "${iso}"`, { hint: 'Use auto, bwrap, runc or chroot.' });
    opts.isolation = iso as Isolation;
    const jobs = flagString(args, 'jobs');
    if (jobs !== undefined) {
      if (!/^[1-9][0-9]*$/.test(jobs)) throw new UsageError(`Invalid --jobs "${jobs}": expected a positive integer`);
      opts.jobs = Number(jobs);
    }
    opts.explain = flagBool(args, 'explain');
    const compression = flagString(args, 'compression');
    if (compression !== undefined) opts.compression = compression;
    opts.ociMediaTypes = args.flags['oci-mediatypes'] !== false;
    opts.insecureRegistries = flagList(args, 'insecure-registry');
    opts.stdout = io.stdout as unknown as NonNullable<BuildOptions['stdout']>;
    const quiet = flagBool(args, 'quiet');
    const toStdout = outputs.some((o) => o === '-' || /(^|,)dest=-($|,)/.test(o));
    const progress = createProgress(quiet ? 'quiet' : parseProgressMode(flagString(args, 'progress')), io.stderr);
    opts.onEvent = (e) => progress.onEvent(e);
    const { interruptOnSignals } = await import('../../sandbox/interrupt.js');
    const interrupt = interruptOnSignals();
    opts.signal = interrupt.signal;
    let result;
    try {
      const { build } = await import('../../export/build-and-export.js');
      result = await build(opts);
    } catch (err) {
      // Interrupted: the step's process tree, mounts and temp dirs are gone; exit 128+signal.
      const sig = interrupt.received();
      if (sig) {
        progress.close();
        io.stderr.write(`ERROR: build interrupted by ${sig}\n`);
        return sig === 'SIGINT' ? 130 : 143;
      }
      throw err;
    } finally {
      interrupt.dispose();
      progress.close();
    }
    const iid = flagString(args, 'iidfile');
    if (iid) {
      await mkdir(dirname(resolve(io.cwd, iid)), { recursive: true });
      await writeFile(resolve(io.cwd, iid), result.imageId);
    }
    const meta = flagString(args, 'metadata-file');
    if (meta) {
      await mkdir(dirname(resolve(io.cwd, meta)), { recursive: true });
      await writeFile(resolve(io.cwd, meta), JSON.stringify(result.metadata, null, 2) + '\n');
    }
    if (!toStdout) {
      if (quiet) io.stdout.write(`${result.imageId}\n`);
      else {
        io.stderr.write(`writing image ${result.imageId} (manifest ${result.manifest.digest}), ${result.stats.cached}/${result.stats.steps} steps cached\n`);
        for (const n of result.names) io.stderr.write(`naming to ${n}\n`);
        for (const n of result.pushed) io.stderr.write(`pushed ${n}\n`);
      }
    }
    void readFile;
    return 0;
  },
};
