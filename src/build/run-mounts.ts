import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseMountSpec } from '../dockerfile/mount.js';
import { KilnError } from '../errors.js';
import { type RunMountInput, prepareRunMounts } from '../sandbox/run-mounts.js';
import type { MountSpec } from '../sandbox/types.js';
import { resolveInRoot } from '../util/safe-path.js';
import { copyFiles } from './copy-files.js';
import type { MountContext } from './runtime.js';

/**
 * RUN --mount values → sandbox mounts: expands ARG/ENV in the values
 * (dockerfile/mount.ts), resolves from= to a stage's or image's rootfs and
 * gives a context bind the .dockerignore-filtered view COPY sees, then hands
 * the rest (cache sharing locks, secrets on tmpfs, rw copies, tmpfs, ssh) to
 * sandbox/'s prepareRunMounts.
 */
export async function runMounts(specs: string[], ctx: MountContext): Promise<{ mounts: MountSpec[]; env: string[]; release(): Promise<void> }> {
  const temps: string[] = [];
  const dropTemps = async () => {
    for (const t of temps) await rm(t, { recursive: true, force: true }).catch(() => undefined);
  };
  const inputs: RunMountInput[] = [];
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
          let fromRoot = m.from !== undefined ? await ctx.rootfsOf(m.from) : ctx.contextDir;
          let source = m.source ?? '/';
          if (m.from === undefined && ctx.contextInclude) {
            // The context as COPY sees it: a filtered copy of the mounted part.
            const tmp = await mkdtemp(join(tmpdir(), 'kiln-ctxbind-'));
            temps.push(tmp);
            const dest = join(tmp, 'ctx');
            await mkdir(dest);
            await copyFiles({ srcRoot: ctx.contextDir, fromContext: true, include: ctx.contextInclude, sources: [source], dest: '/', workdir: '/', destRoot: dest });
            const st = await stat(await resolveInRoot(ctx.contextDir, source, true)).catch(() => undefined);
            fromRoot = dest;
            source = st?.isDirectory() ? '/' : posix.basename(source);
          }
          inputs.push({ type: 'bind', target: target!, fromRoot, source, readwrite: !m.readOnly });
          break;
        }
        case 'cache': {
          const c: Extract<RunMountInput, { type: 'cache' }> = { type: 'cache', target: target!, readonly: m.readOnly };
          if (m.id !== undefined) c.id = m.id;
          if (m.sharing !== undefined) c.sharing = m.sharing;
          if (m.mode !== undefined) c.mode = m.mode;
          if (m.uid !== undefined) c.uid = m.uid;
          if (m.gid !== undefined) c.gid = m.gid;
          if (m.from !== undefined) {
            c.fromRoot = await ctx.rootfsOf(m.from);
            if (m.source !== undefined) c.source = m.source;
          }
          inputs.push(c);
          break;
        }
        case 'tmpfs':
          inputs.push(m.sizeLimit !== undefined ? { type: 'tmpfs', target: target!, sizeBytes: m.sizeLimit } : { type: 'tmpfs', target: target! });
          break;
        case 'secret': {
          const s: Extract<RunMountInput, { type: 'secret' }> = { type: 'secret', required: m.required };
          const id = m.id ?? (m.source ? posix.basename(m.source) : undefined);
          if (id !== undefined) s.id = id;
          if (target !== undefined) s.target = target;
          if (m.env !== undefined) s.env = m.env;
          if (m.mode !== undefined) s.mode = m.mode;
          if (m.uid !== undefined) s.uid = m.uid;
          if (m.gid !== undefined) s.gid = m.gid;
          inputs.push(s);
          break;
        }
        case 'ssh': {
          const s: Extract<RunMountInput, { type: 'ssh' }> = { type: 'ssh', required: m.required };
          if (m.id !== undefined) s.id = m.id;
          if (target !== undefined) s.target = target;
          if (m.mode !== undefined) s.mode = m.mode;
          if (m.uid !== undefined) s.uid = m.uid;
          if (m.gid !== undefined) s.gid = m.gid;
          inputs.push(s);
          break;
        }
      }
    }
    const prepared = await prepareRunMounts(inputs, {
      kilnRoot: ctx.kilnRoot,
      secrets: ctx.secrets,
      ssh: Object.fromEntries(ctx.sshSockets),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return {
      mounts: prepared.mounts,
      env: prepared.env,
      release: async () => {
        await prepared.release();
        await dropTemps();
      },
    };
  } catch (err) {
    await dropTemps();
    throw err;
  }
}
