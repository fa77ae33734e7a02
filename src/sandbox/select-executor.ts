import { HostError, UsageError } from '../errors.js';
import { BwrapExecutor } from './bwrap.js';
import { ChrootExecutor, probeChrootNamespaces } from './chroot.js';
import { bwrapWorks, canCreateUserNamespace, type HostProfileKind } from './host-profile.js';
import { RuncExecutor } from './runc.js';
import type { Executor, Isolation } from './types.js';
import { which } from '../util/which.js';

export const ISOLATIONS: Isolation[] = ['auto', 'bwrap', 'runc', 'chroot'];

export interface SelectedExecutor {
  executor: Executor;
  /** Why this executor, and (for chroot) that RUN is not isolated; the CLI prints it. */
  notice?: string;
}

export function parseIsolation(value: string | undefined): Isolation {
  const v = value ?? 'auto';
  if (!(ISOLATIONS as string[]).includes(v)) {
    throw new UsageError(`Invalid --isolation "${v}": expected one of ${ISOLATIONS.join(', ')}`);
  }
  return v as Isolation;
}

export const CHROOT_NOTICE =
  'RUN steps use chroot isolation: they are NOT isolated from this host (shared users, no seccomp, root in a RUN step can leave the chroot). Use it only inside a container you trust.';

/**
 * Pick the executor for --isolation. auto: chroot on a host without user
 * namespaces (the no-userns profile), else bwrap when it works here, else runc
 * as real root, else chroot. An explicit choice is checked and refused with the
 * fix when it cannot work.
 */
export async function selectExecutor(isolation: Isolation = 'auto', opts: { profile?: HostProfileKind } = {}): Promise<SelectedExecutor> {
  const uid = process.getuid?.() ?? 0;
  const realRoot = uid === 0 && !process.env.KILN_BUILD_NS;
  switch (isolation) {
    case 'bwrap': {
      const ex = new BwrapExecutor();
      const probe = await bwrapWorks();
      if (!probe.ok) {
        throw new HostError(`Cannot use bwrap isolation: ${probe.stderr || 'bwrap failed'}`, {
          code: 'HOST_BWRAP_BROKEN',
          hint: 'Run "kiln doctor" for the fix, or pass --isolation chroot.',
        });
      }
      return { executor: ex };
    }
    case 'runc':
      // As root, or root in kiln's build namespace (runc then runs in its rootless mode).
      if (uid !== 0) {
        throw new HostError('Cannot use runc isolation: kiln runs runc as root or in its build user namespace only', {
          code: 'HOST_RUNC_ROOTLESS',
          hint: 'Use --isolation bwrap (the default), or run a command that enters the build namespace (kiln build).',
        });
      }
      return { executor: new RuncExecutor() };
    case 'chroot':
      if (uid !== 0) {
        throw new HostError('Cannot use chroot isolation: it needs root (or kiln\'s build user namespace)', {
          code: 'HOST_CHROOT_ROOTLESS',
          hint: 'Run kiln as root inside the container, or allow user namespaces so kiln can build rootless.',
        });
      }
      return { executor: new ChrootExecutor(), notice: CHROOT_NOTICE };
    case 'auto': {
      const profile = opts.profile ?? ((await canCreateUserNamespace()).ok ? undefined : 'no-userns');
      if (profile === 'no-userns') {
        if (uid !== 0) {
          throw new HostError('Cannot run RUN steps: this host allows no user namespaces and kiln is not root', {
            code: 'HOST_NO_USERNS',
            hint: 'Run "kiln doctor" for the exact fix (sysctl, AppArmor or seccomp), or run kiln as root in the container.',
          });
        }
        const chroot = new ChrootExecutor();
        const { ns } = await probeChrootNamespaces(which('unshare') ?? 'unshare').catch(() => ({ ns: ['?'] }));
        const plain = ns.length === 0 ? ' No mount namespace either: steps see no /proc, share this container\'s network and processes, and RUN --mount=type=bind|cache|tmpfs and --network=none are refused.' : '';
        return { executor: chroot, notice: `No user namespaces here: ${CHROOT_NOTICE}${plain}` };
      }
      if (which('bwrap') && (await bwrapWorks()).ok) return { executor: new BwrapExecutor() };
      if (realRoot && which('runc')) return { executor: new RuncExecutor(), notice: 'bwrap is unavailable: RUN steps use runc.' };
      if (uid === 0) return { executor: new ChrootExecutor(), notice: `bwrap is unavailable: ${CHROOT_NOTICE}` };
      throw new HostError('Cannot run RUN steps: bubblewrap is missing or broken', {
        code: 'HOST_NO_BWRAP',
        hint: 'apt-get install bubblewrap, then run "kiln doctor".',
      });
    }
  }
}
