import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { parseMountSpec } from '../dockerfile/mount.js';
import { KilnError } from '../errors.js';
import type { MountSpec } from '../sandbox/types.js';
import { resolveInRoot } from '../util/safe-path.js';
import { copyFiles } from './copy-files.js';
import type { MountContext } from './runtime.js';

const run = promisify(execFile);

/**
 * RUN --mount values → sandbox mount specs. bind (context, stage or image;
 * read-only unless rw, and rw writes go to a throw-away copy), cache (kept
 * under $KILN_ROOT/cache/mounts, default id = target, uid/gid/mode on
 * creation), tmpfs (size), secret (file on tmpfs, from --secret). ssh and
 * secret env= are refused until the sandbox can pass them.
 */
export async function runMounts(specs: string[], ctx: MountContext): Promise<{ mounts: MountSpec[]; env: string[]; release(): Promise<void> }> {
  const mounts: MountSpec[] = [];
  /** Environment the mounts add (secret env=, SSH_AUTH_SOCK): never in keys, history or layers. */
  const env: string[] = [];
  const temps: string[] = [];
  const release = async () => {
    for (const t of temps) await rm(t, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    for (const raw of specs) {
      let m;
      try {
        m = parseMountSpec(raw, ctx.expand);
      } catch (err) {
        throw new KilnError('MOUNT_INVALID', `Invalid RUN --mount "${raw}": ${(err as Error).message}`, { cause: err });
      }
      const target = m.target ? posix.resolve('/', m.target) : undefined;
      switch (m.type) {
        case 'bind': {
          const root = m.from !== undefined ? await ctx.rootfsOf(m.from) : ctx.contextDir;
          let source = await resolveInRoot(root, m.source ?? '.', true);
          if (m.from === undefined && ctx.contextInclude) {
            // The context as COPY sees it: a filtered copy (read-only or not).
            const tmp = await mkdtemp(join(tmpdir(), 'kiln-ctxbind-'));
            temps.push(tmp);
            const dest = join(tmp, 'ctx');
            await mkdir(dest);
            await copyFiles({ srcRoot: ctx.contextDir, fromContext: true, include: ctx.contextInclude, sources: [m.source ?? '.'], dest: '/', workdir: '/', destRoot: dest });
            const st = await stat(await resolveInRoot(ctx.contextDir, m.source ?? '.', true)).catch(() => undefined);
            source = st?.isDirectory() ? dest : join(dest, posix.basename(m.source ?? '.'));
            mounts.push({ type: 'bind', source, target: target!, readonly: m.readOnly });
            break;
          }
          try {
            await lstat(source);
          } catch {
            throw new KilnError('MOUNT_SOURCE', `Cannot mount "${m.source ?? '.'}" at "${target}": not found in ${m.from !== undefined ? `"${m.from}"` : 'the build context'}`);
          }
          if (!m.readOnly) {
            const tmp = await mkdtemp(join(tmpdir(), 'kiln-bindrw-'));
            temps.push(tmp);
            await run('cp', ['-a', '--', source, join(tmp, 'src')], { timeout: 600_000 });
            source = join(tmp, 'src');
          }
          mounts.push({ type: 'bind', source, target: target!, readonly: m.readOnly });
          break;
        }
        case 'cache': {
          const id = m.id ?? target!;
          const dir = join(ctx.cacheRoot, createHash('sha256').update(id).digest('hex').slice(0, 32));
          let created = false;
          try {
            await stat(dir);
          } catch {
            await mkdir(dir, { recursive: true });
            created = true;
          }
          if (created) {
            if (m.from !== undefined) {
              const root = await ctx.rootfsOf(m.from);
              const src = await resolveInRoot(root, m.source ?? '.', true);
              await run('cp', ['-a', '--', `${src}/.`, dir], { timeout: 600_000 });
            }
            await chmod(dir, m.mode ?? 0o755);
            await chown(dir, m.uid ?? 0, m.gid ?? 0);
          }
          mounts.push({ type: 'bind', source: dir, target: target!, readonly: m.readOnly });
          break;
        }
        case 'tmpfs':
          mounts.push(m.sizeLimit !== undefined ? { type: 'tmpfs', target: target!, sizeBytes: m.sizeLimit } : { type: 'tmpfs', target: target! });
          break;
        case 'secret': {
          const id = m.id ?? posix.basename(m.target ?? m.source ?? m.env ?? '');
          const value = ctx.secrets.get(id);
          if (value === undefined) {
            if (m.required) throw new KilnError('SECRET_MISSING', `secret ${id} not found`, { hint: `Pass it with --secret id=${id},src=FILE.` });
            break;
          }
          // env= alone exposes the secret as a variable only (BuildKit); with a target it is both.
          if (m.env !== undefined) env.push(`${m.env}=${value.toString('utf8')}`);
          if (m.env === undefined || target !== undefined) mounts.push({ type: 'file', target: target ?? `/run/secrets/${id}`, content: value, mode: m.mode ?? 0o400 });
          break;
        }
        case 'ssh': {
          const id = m.id ?? 'default';
          const sock = ctx.sshSockets.get(id);
          if (!sock) {
            if (m.required) throw new KilnError('SSH_MISSING', `no SSH key ${id} forwarded from the client`, { hint: `Pass it with --ssh ${id}[=SOCKET] (default: $SSH_AUTH_SOCK).` });
            break;
          }
          const at = target ?? '/run/buildkit/ssh_agent.0';
          mounts.push({ type: 'bind', source: sock, target: at, readonly: false });
          env.push(`SSH_AUTH_SOCK=${at}`);
          break;
        }
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { mounts, env, release };
}
