/** Shapes shared by the benchmark runner, tools and scenarios. */
import type { Dockerd } from '../../test/helpers/dockerd.js';
import type { CommandSpec } from './measure.js';

export type ToolKind = 'kiln' | 'peer' | 'raw';

/**
 * One column of a scenario: something timed N times. `before(i)` runs untimed before run i
 * (fresh storage, a file edit, a priming build) and may throw: the tool is then reported as
 * failed for this scenario with that message. `command(i)` is what is timed.
 */
export interface Tool {
  name: string;
  kind: ToolKind;
  /** Set when the tool cannot run here; it is listed with this reason, never run. */
  unavailable?: string;
  before?(i: number): Promise<void>;
  command(i: number): CommandSpec;
  /** Untimed check after a successful run (e.g. the image really exists); throws on failure. */
  verify?(i: number): Promise<void>;
}

/** A scenario in one mode (cold, warm, change, push, pull…): the unit of a table row group. */
export interface ScenarioRun {
  id: string;
  description: string;
  tools: Tool[];
}

export interface BenchEnv {
  quick: boolean;
  runs: number;
  /** "127.0.0.1:PORT" of the local registry holding the fixtures. */
  registry: string;
  /** registries.conf marking the local registry insecure (CONTAINERS_REGISTRIES_CONF). */
  registriesConf: string;
  /** What every builder reads (registry storage, contexts, kiln's code): read back after a cold reset drops the page cache. */
  warmPaths: string[];
  /** Scratch space for this bench run (deleted at the end). */
  work: string;
  repoRoot: string;
  kilnBin: string;
  /** Keep NODE_EXTRA_CA_CERTS in kiln's environment (see kilnEnv). */
  keepNodeCaCerts: boolean;
  /** Extra flags appended to every `kiln build` (e.g. --isolation chroot). */
  kilnBuildFlags: string[];
  dockerd?: Dockerd;
  /** Why BuildKit is not a peer in this run. */
  dockerdReason?: string;
  timeoutMs: number;
  log(msg: string): void;
  /** Run at the end of the bench (scratch registries a scenario started, …). */
  cleanups: (() => Promise<unknown>)[];
}

export interface Scenario {
  name: string;
  description: string;
  /** Part of `--quick` (small data, no dockerd, no Debian fixtures). */
  quick: boolean;
  /** Returns the runs of this scenario (after pushing what it needs to the registry). */
  setup(env: BenchEnv): Promise<ScenarioRun[]>;
}
