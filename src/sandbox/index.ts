/**
 * sandbox/: run one process over a rootfs (bwrap, runc, chroot), user
 * namespaces and id maps, host profiles. The public surface other folders use.
 */
export type { Executor, Isolation, MountSpec, RunRequest, RunUser } from './types.js';
export { BwrapExecutor } from './bwrap.js';
export { RuncExecutor } from './runc.js';
export { ChrootExecutor } from './chroot.js';
export { selectExecutor, parseIsolation, ISOLATIONS, CHROOT_NOTICE, type SelectedExecutor } from './select-executor.js';
export { resolveUser, homeOf } from './user.js';
export { prepareRunMounts, parseSecretFlag, parseSshFlags, type RunMountInput, type RunMountContext, type RunMounts, type SecretSource } from './run-mounts.js';
export { ensureBuildNamespace } from './userns.js';
export { detectHostProfile, canCreateUserNamespace, canMountOverlayInUserns, bwrapWorks, BUILD_NS_ENV, type HostProfile, type HostProfileKind, type FeatureCheck } from './host-profile.js';
export { interruptOnSignals, type Interrupt } from './interrupt.js';
