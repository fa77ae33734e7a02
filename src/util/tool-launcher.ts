import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Short system tools (mount, umount, getfattr, setfattr, mknod …) started by a small perl
 * process instead of by kiln itself.
 *
 * Node forks its whole process to start a child. With a build's heap and threads that cost
 * ~4 ms of the main thread per child here (0.8 ms for a bare `node`), and fork write-protects
 * every page, so the pages kiln touches next fault once each. A step starts three to five
 * tools; a build, dozens. The launcher is one perl started once, early, while kiln is small:
 * kiln writes a request down a pipe, perl forks (a few MB) and reports the pid and the exit
 * status; stdin, stdout and stderr go through files in a private temp dir. Measured: a tool's
 * latency 2.7-3.2 ms → 1.7-2.1 ms, main-thread time per tool 1.8-2.3 ms → 0.05-0.09 ms;
 * copy-from-remote (extractions beside mounts) 1.21 → 1.15 s median; a bash launcher lost
 * (its read builtin takes a pipe byte by byte, and it forks twice per tool).
 *
 * Tools run with kiln's environment, user and namespaces (the launcher is started lazily, in
 * the process that needs it). When perl is missing or the launcher has died, tools are
 * spawned directly, as before; KILN_DIRECT_SPAWN=1 forces that.
 */

export interface ToolRun {
  /** Exit code, or null when a signal ended the tool. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ToolOptions {
  cwd?: string;
  /** Bytes for the tool's stdin (else /dev/null). */
  input?: Buffer;
  /** SIGKILL after this long (the run then ends with signal SIGKILL). */
  timeoutMs?: number;
}

/** A tool that could not be started (not installed, not executable); `code` is ENOENT or EACCES. */
export class ToolStartError extends Error {
  readonly code: 'ENOENT' | 'EACCES';
  constructor(
    readonly cmd: string,
    code: 'ENOENT' | 'EACCES',
  ) {
    super(`spawn ${cmd} ${code}`);
    this.code = code;
  }
}

// perl-base is Essential on Debian (always installed) and its fork is cheap. Requests are
// NUL-separated: id, cwd, input file ('' = /dev/null), argc, argv…; replies are lines:
// "P id pid" once started, "X id status" when done (a wait status), "N id" when the command
// is not found, "A id" when it cannot be executed. No signal handling: each tool gets a
// waiter process that forks it, reports, waits and reports again (the launcher ignores
// SIGCHLD, so waiters are reaped by the kernel). Replies are single write(2)s of one line,
// atomic on the pipe whoever writes them.
const LAUNCHER_SCRIPT = `
use strict; use warnings; use POSIX ();
my $dir = shift @ARGV; $/ = "\\0"; $SIG{CHLD} = 'IGNORE';
sub field { my $f = <STDIN>; exit 0 unless defined $f; chomp $f; return $f; }
sub found { my $c = shift; return -e $c ? (-x $c && !-d $c ? 'ok' : 'A') : 'N' if $c =~ m{/}; for my $d (split /:/, $ENV{PATH} // '') { my $p = ($d eq '' ? '.' : $d) . "/$c"; return 'ok' if -x $p && !-d $p; } return 'N'; }
for (;;) {
  my ($id, $cwd, $inp, $n) = (field(), field(), field(), field());
  my @args = map { field() } 1 .. $n;
  my $ok = found($args[0]);
  if ($ok ne 'ok') { syswrite(STDOUT, "$ok $id\\n"); next; }
  my $waiter = fork();
  if (!defined $waiter) { syswrite(STDOUT, "X $id 32512\\n"); next; }
  next if $waiter;
  $SIG{CHLD} = 'DEFAULT';
  my $pid = fork();
  if (!defined $pid) { syswrite(STDOUT, "X $id 32512\\n"); POSIX::_exit(0); }
  if ($pid == 0) {
    chdir $cwd or POSIX::_exit(126);
    open(STDIN, '<', $inp eq '' ? '/dev/null' : $inp) or POSIX::_exit(126);
    open(STDOUT, '>', "$dir/$id.o") or POSIX::_exit(126);
    open(STDERR, '>', "$dir/$id.e") or POSIX::_exit(126);
    exec { $args[0] } @args;
    POSIX::_exit(127);
  }
  syswrite(STDOUT, "P $id $pid\\n");
  waitpid($pid, 0);
  syswrite(STDOUT, "X $id $?\\n");
  POSIX::_exit(0);
}
`;

interface Pending {
  argv: string[];
  resolve: (r: ToolRun) => void;
  reject: (e: Error) => void;
  pid?: number;
  timer?: NodeJS.Timeout;
  timedOut: boolean;
  input?: string;
}

class Launcher {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffered = '';
  dead = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => this.onData(s));
    child.on('exit', () => this.die(new Error('the tool launcher (perl) exited')));
    child.on('error', (e) => this.die(e));
    child.stdin!.on('error', (e) => this.die(e));
    this.idle();
  }

  static start(): Launcher | undefined {
    if (!existsSync('/usr/bin/perl')) return undefined;
    const dir = mkdtempSync(join(tmpdir(), 'kiln-tools-'));
    let child: ChildProcess;
    try {
      child = spawn('/usr/bin/perl', ['-e', LAUNCHER_SCRIPT, dir], { stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return new Launcher(child, dir);
  }

  /** Nothing running: the launcher must not keep the process alive. */
  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
  }

  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref?: () => void }).ref?.();
    (this.child.stdin as unknown as { ref?: () => void }).ref?.();
  }

  run(argv: string[], opts: ToolOptions): Promise<ToolRun> {
    const id = this.nextId++;
    return new Promise<ToolRun>((resolve, reject) => {
      const p: Pending = { argv, resolve, reject, timedOut: false };
      if (opts.input !== undefined) {
        p.input = join(this.dir, `${id}.i`);
        writeFileSync(p.input, opts.input);
      }
      if (this.pending.size === 0) this.busy();
      this.pending.set(id, p);
      const fields = [String(id), opts.cwd ?? process.cwd(), p.input ?? '', String(argv.length), ...argv];
      this.child.stdin!.write(fields.join('\0') + '\0');
      if (opts.timeoutMs !== undefined) {
        p.timer = setTimeout(() => {
          p.timedOut = true;
          if (p.pid !== undefined) killQuietly(p.pid);
        }, opts.timeoutMs);
      }
    });
  }

  private onData(s: string): void {
    this.buffered += s;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) !== -1) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const [kind, idText, value] = line.split(' ');
      const id = Number(idText);
      const p = this.pending.get(id);
      if (!p) continue;
      if (kind === 'P') {
        p.pid = Number(value);
        if (p.timedOut) killQuietly(p.pid);
        continue;
      }
      this.pending.delete(id);
      if (this.pending.size === 0) this.idle();
      if (p.timer) clearTimeout(p.timer);
      if (p.input) unlinkQuietly(p.input);
      if (kind === 'N' || kind === 'A') {
        p.reject(new ToolStartError(p.argv[0]!, kind === 'N' ? 'ENOENT' : 'EACCES'));
        continue;
      }
      const status = Number(value); // a wait(2) status
      const out = join(this.dir, `${id}.o`);
      const err = join(this.dir, `${id}.e`);
      const run: ToolRun = { code: status >> 8, signal: null, stdout: readQuietly(out), stderr: readQuietly(err) };
      unlinkQuietly(out);
      unlinkQuietly(err);
      if ((status & 0x7f) !== 0) {
        run.code = null;
        run.signal = (Object.entries(osConstants.signals).find(([, n]) => n === (status & 0x7f))?.[0] ?? 'SIGKILL') as NodeJS.Signals;
      }
      if (p.timedOut && run.signal === null) {
        run.code = null;
        run.signal = 'SIGKILL';
      }
      p.resolve(run);
    }
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      if (p.pid !== undefined && p.timedOut) killQuietly(p.pid);
      p.reject(new Error(`Cannot run "${p.argv.join(' ')}": ${err.message}`));
    }
    this.pending.clear();
    this.child.kill();
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function readQuietly(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

let launcher: Launcher | undefined;
let launcherTried = false;
let launcherDisabled = process.env.KILN_DIRECT_SPAWN === '1';

/** Start the launcher now (kiln is smallest early on); later calls reuse it. */
export function startToolLauncher(): void {
  if (launcherDisabled || launcherTried) return;
  launcherTried = true;
  launcher = Launcher.start();
}

/** Tests: spawn every tool directly (or through the launcher again). */
export function setDirectSpawn(direct: boolean): void {
  launcherDisabled = direct;
}

/**
 * Run `argv` (no shell) and collect its output. Resolves with the exit status whatever it is;
 * rejects with ToolStartError when the tool cannot be started.
 */
export function runToolCollect(argv: string[], opts: ToolOptions = {}): Promise<ToolRun> {
  if (!launcherDisabled) {
    startToolLauncher();
    if (launcher && !launcher.dead) return launcher.run(argv, opts);
  }
  return spawnDirect(argv, opts);
}

function spawnDirect(argv: string[], opts: ToolOptions): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'EACCES') reject(new ToolStartError(argv[0]!, e.code));
      else reject(e);
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
    if (child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}
