import type { ContentStore } from '../content/types.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { Platform } from '../oci/platform.js';
import type { Compression } from '../oci/media-types.js';
import type { Isolation } from '../sandbox/types.js';

/** Progress events of a build, in order per step (ids are "stage/index", e.g. "2/3"). */
export type BuildEvent =
  | { type: 'step-start'; id: string; stage: string; name: string; time: number }
  | { type: 'step-log'; id: string; stream: 'stdout' | 'stderr'; data: string; time: number }
  | { type: 'step-done'; id: string; cached: boolean; durationMs: number; error?: string; time: number }
  | { type: 'explain'; id: string; name: string; hit: boolean; reasons: string[]; time: number }
  | { type: 'warning'; message: string; time: number }
  | { type: 'info'; message: string; time: number };

export interface SecretSpec {
  id: string;
  /** File with the secret, or… */
  src?: string;
  /** …environment variable holding it. */
  env?: string;
}

export interface EngineOptions {
  /** Build context directory (absolute). */
  contextDir: string;
  /** Dockerfile path (absolute), or its text with a display name. */
  dockerfile: { path: string } | { text: string; name: string };
  target?: string;
  buildArgs?: Record<string, string>;
  platform?: Platform;
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  jobs?: number;
  isolation?: Isolation;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** OCI media types (default true). */
  ociMediaTypes?: boolean;
  compression?: { compression: Compression; level?: number };
  secrets?: SecretSpec[];
  ssh?: string[];
  /** --build-context name=DIR|docker-image://REF */
  buildContexts?: Record<string, string>;
  explain?: boolean;
  /** Registries reachable over plain HTTP (host[:port]); 127.0.0.1/localhost always are. */
  insecureRegistries?: string[];
  kilnRoot?: string;
  store?: ContentStore;
  /** Instruction cache to use instead of $KILN_ROOT/cache alone (--cache-from adds imported records). */
  cacheStore?: import('./cache-store.js').CacheStore;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
}

export interface EngineResult {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  manifestBytes: Buffer;
  configBytes: Buffer;
  /** The image ID (config digest), as `docker build` prints it. */
  imageId: Digest;
  store: ContentStore;
  /** Steps run vs. taken from cache. */
  stats: { steps: number; cached: number };
  warnings: string[];
}
