import { detectHostProfile, type HostProfile, type HostProfileKind } from '../../sandbox/host-profile.js';
import { selectExecutor } from '../../sandbox/select-executor.js';
import { disableProbeCache } from '../../util/host-probe-cache.js';
import { type Command, flagBool } from '../command.js';

const PROFILE_TEXT: Record<HostProfileKind, string> = {
  root: 'root',
  'rootless-subuid': 'rootless with a subuid range (kiln re-executes itself in a user namespace with the full id map)',
  'rootless-single-id': 'rootless with a single id (no subuid range: only root can own files in images; RUN steps that chown or run as another USER fail)',
  'no-userns': 'no user namespaces (RUN steps use chroot isolation and are not isolated from this host)',
};

export interface DoctorReport {
  profile: HostProfile;
  isolation: { executor?: string; notice?: string; error?: string; hint?: string };
}

/** Detect the host profile and the executor `--isolation auto` would use. */
export async function doctorReport(): Promise<DoctorReport> {
  // What the host can do now, not what an earlier build found.
  disableProbeCache();
  const profile = await detectHostProfile();
  const isolation: DoctorReport['isolation'] = {};
  try {
    const sel = await selectExecutor('auto', { profile: profile.kind });
    isolation.executor = sel.executor.name;
    if (sel.notice) isolation.notice = sel.notice;
  } catch (err) {
    isolation.error = (err as Error).message;
    const hint = (err as { hint?: string }).hint;
    if (hint) isolation.hint = hint;
  }
  return { profile, isolation };
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check what kiln can do on this host, with the exact fix for each missing feature',
  usage: 'doctor [--json]',
  flags: [{ name: 'json', type: 'boolean', description: 'Print the report as JSON' }],
  details: 'Exit status: 0 when RUN steps can run here, 1 when they cannot.',
  async run(args, io) {
    const report = await doctorReport();
    const ok = report.isolation.executor !== undefined;
    if (flagBool(args, 'json')) {
      io.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return ok ? 0 : 1;
    }
    const { profile, isolation } = report;
    const out: string[] = [];
    out.push(`Host profile: ${PROFILE_TEXT[profile.kind]}`);
    out.push(`User: ${profile.user} (uid ${profile.uid})${profile.buildNamespace ? `, inside kiln's build namespace (${profile.buildNamespace})` : ''}`);
    out.push(isolation.executor ? `RUN isolation (auto): ${isolation.executor}` : `RUN isolation: none works here: ${isolation.error}`);
    if (isolation.notice) out.push(`  note: ${isolation.notice}`);
    if (isolation.hint) out.push(`  fix: ${isolation.hint}`);
    out.push('');
    const w = Math.max(...profile.features.map((f) => f.title.length));
    for (const f of profile.features) {
      out.push(`  ${f.ok ? 'ok  ' : 'MISS'}  ${f.title.padEnd(w)}  ${f.detail}`);
      if (!f.ok && f.fix) out.push(`        ${''.padEnd(w)}  fix: ${f.fix}`);
    }
    io.stdout.write(out.join('\n') + '\n');
    return ok ? 0 : 1;
  },
};
