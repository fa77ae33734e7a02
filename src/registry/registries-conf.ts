import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { KilnError, RegistryError } from '../errors.js';

/**
 * containers-registries.conf(5) version 2: which host serves a name, mirrors,
 * insecure and blocked registries, unqualified-search registries.
 *
 * Files: $CONTAINERS_REGISTRIES_CONF alone when set; else the user's
 * $XDG_CONFIG_HOME/containers/registries.conf (~/.config/…) when it exists, else
 * /etc/containers/registries.conf; then every *.conf in the matching
 * registries.conf.d/ directory, in name order, later [[registry]] prefixes
 * replacing earlier ones.
 */
export interface MirrorConf {
  location: string;
  insecure: boolean;
  /** "all" (default), "digest-only" or "tag-only". */
  pullFromMirror: 'all' | 'digest-only' | 'tag-only';
}

export interface RegistryConf {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorConf[];
}

export interface RegistriesConf {
  registries: RegistryConf[];
  unqualifiedSearchRegistries: string[];
  /** Files read, in order (for `kiln doctor` and error hints). */
  files: string[];
}

/** One place to fetch a repository from: a host, the repository path there, and how to talk to it. */
export interface Endpoint {
  /** host[:port] contacted (docker.io → registry-1.docker.io). */
  host: string;
  /** Repository path on that host. */
  repository: string;
  insecure: boolean;
  mirror: boolean;
}

export function emptyRegistriesConf(): RegistriesConf {
  return { registries: [], unqualifiedSearchRegistries: [], files: [] };
}

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

function str(v: unknown, where: string, file: string): string {
  if (typeof v !== 'string') throw new KilnError('REGISTRIES_CONF_INVALID', `Invalid registries.conf "${file}": ${where} must be a string`);
  return v;
}

/** Merge one file's TOML text into `conf`. */
export function mergeRegistriesConf(conf: RegistriesConf, text: string, file: string): void {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new KilnError('REGISTRIES_CONF_INVALID', `Cannot parse registries.conf "${file}": ${(err as Error).message.split('\n')[0]}`);
  }
  conf.files.push(file);
  if (doc['unqualified-search-registries'] !== undefined) {
    const list = doc['unqualified-search-registries'];
    if (!Array.isArray(list)) throw new KilnError('REGISTRIES_CONF_INVALID', `Invalid registries.conf "${file}": unqualified-search-registries must be an array`);
    conf.unqualifiedSearchRegistries = list.map((x, i) => str(x, `unqualified-search-registries[${i}]`, file));
  }
  if (doc.registries !== undefined && !Array.isArray(doc.registry)) {
    throw new KilnError('REGISTRIES_CONF_INVALID', `Unsupported registries.conf "${file}": version 1 format ([registries.search] …) is not supported`, {
      hint: 'Rewrite it in the version 2 format ([[registry]] tables).',
    });
  }
  const regs = doc.registry;
  if (regs === undefined) return;
  if (!Array.isArray(regs)) throw new KilnError('REGISTRIES_CONF_INVALID', `Invalid registries.conf "${file}": [[registry]] must be an array of tables`);
  for (const [i, r] of (regs as Record<string, unknown>[]).entries()) {
    const location = r.location === undefined ? '' : str(r.location, `registry[${i}].location`, file);
    const prefix = r.prefix === undefined ? location : str(r.prefix, `registry[${i}].prefix`, file);
    if (!prefix) throw new KilnError('REGISTRIES_CONF_INVALID', `Invalid registries.conf "${file}": registry[${i}] needs a prefix or a location`);
    const mirrors = ((r.mirror as Record<string, unknown>[] | undefined) ?? []).map((m, j) => ({
      location: str(m.location, `registry[${i}].mirror[${j}].location`, file),
      insecure: m.insecure === true,
      pullFromMirror: ((m['pull-from-mirror'] as string | undefined) ?? 'all') as MirrorConf['pullFromMirror'],
    }));
    for (const m of mirrors) {
      if (!['all', 'digest-only', 'tag-only'].includes(m.pullFromMirror)) {
        throw new KilnError('REGISTRIES_CONF_INVALID', `Invalid registries.conf "${file}": pull-from-mirror "${m.pullFromMirror}" must be all, digest-only or tag-only`);
      }
    }
    const entry: RegistryConf = {
      prefix,
      location: location || prefix.replace(/^\*\./, ''),
      insecure: r.insecure === true,
      blocked: r.blocked === true,
      mirrorByDigestOnly: r['mirror-by-digest-only'] === true,
      mirrors,
    };
    conf.registries = conf.registries.filter((x) => x.prefix !== prefix);
    conf.registries.push(entry);
  }
}

/** Load registries.conf as containers/image does (see module comment). */
export async function loadRegistriesConf(env: NodeJS.ProcessEnv = process.env): Promise<RegistriesConf> {
  const conf = emptyRegistriesConf();
  let main: string;
  let dropIn: string | undefined;
  if (env.CONTAINERS_REGISTRIES_CONF) {
    main = env.CONTAINERS_REGISTRIES_CONF;
    if (!(await exists(main))) throw new KilnError('REGISTRIES_CONF_INVALID', `Cannot read registries.conf "${main}" named by CONTAINERS_REGISTRIES_CONF: no such file`);
  } else {
    const user = join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'containers', 'registries.conf');
    main = (await exists(user)) ? user : '/etc/containers/registries.conf';
    dropIn = `${main}.d`;
  }
  if (await exists(main)) mergeRegistriesConf(conf, await readFile(main, 'utf8'), main);
  if (dropIn) {
    let names: string[] = [];
    try {
      names = (await readdir(dropIn)).filter((n) => n.endsWith('.conf')).sort();
    } catch {
      /* no drop-in dir */
    }
    for (const n of names) mergeRegistriesConf(conf, await readFile(join(dropIn, n), 'utf8'), join(dropIn, n));
  }
  return conf;
}

/** Does `prefix` (maybe "*.example.com") cover the name "host/path"? Returns the matched length or -1. */
function prefixMatch(prefix: string, name: string): number {
  if (prefix.startsWith('*.')) {
    const host = name.split('/')[0]!;
    return host.endsWith(prefix.slice(1)) ? prefix.length : -1;
  }
  if (name === prefix) return prefix.length;
  if (name.startsWith(prefix) && (name[prefix.length] === '/' || name[prefix.length] === ':' || name[prefix.length] === '@')) return prefix.length;
  return -1;
}

/** The [[registry]] entry for a name "domain/path", longest prefix first. */
export function findRegistryConf(conf: RegistriesConf, name: string): RegistryConf | undefined {
  let best: RegistryConf | undefined;
  let bestLen = -1;
  for (const r of conf.registries) {
    const n = prefixMatch(r.prefix, name);
    if (n > bestLen) {
      best = r;
      bestLen = n;
    }
  }
  return best;
}

/** Docker treats the loopback registries as insecure (plain HTTP allowed) by default. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function split(location: string): { host: string; path: string } {
  const i = location.indexOf('/');
  return i === -1 ? { host: location, path: '' } : { host: location.slice(0, i), path: location.slice(i + 1) };
}

function hubHost(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' ? 'registry-1.docker.io' : host;
}

export interface EndpointOptions {
  /** Hosts given with --insecure-registry. */
  insecureRegistries?: string[];
  /** Pull by digest (affects digest-only/tag-only mirrors). */
  byDigest?: boolean;
  /** Push: mirrors are never used. */
  forPush?: boolean;
  /** Treat loopback hosts as insecure, as Docker does (default true). */
  loopbackInsecure?: boolean;
}

/**
 * Where to fetch (or push) `domain/path`: mirrors first (pull only), then the primary
 * location. A blocked registry raises RegistryError BLOCKED.
 */
export function resolveEndpoints(conf: RegistriesConf, domain: string, path: string, opts: EndpointOptions = {}): Endpoint[] {
  const name = `${domain}/${path}`;
  const r = findRegistryConf(conf, name);
  const insecureFlag = (h: string) => (opts.insecureRegistries ?? []).some((x) => x.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '') === h) || (opts.loopbackInsecure !== false && isLoopbackHost(h));
  if (!r) {
    const host = hubHost(domain);
    return [{ host, repository: path, insecure: insecureFlag(host) || insecureFlag(domain), mirror: false }];
  }
  if (r.blocked) {
    throw new RegistryError(`Cannot use "${name}": registry "${r.prefix}" is blocked in registries.conf`, { registry: domain, repository: path, code: 'REGISTRY_BLOCKED', hint: `Files read: ${conf.files.join(', ') || '(none)'}` });
  }
  const rewrite = (location: string): { host: string; repository: string } => {
    // The part of the name after the prefix is kept; wildcard prefixes keep the whole name's path.
    const rest = r.prefix.startsWith('*.') ? path : name.slice(r.prefix.length).replace(/^\//, '');
    const { host, path: base } = split(location);
    return { host: hubHost(host), repository: [base, rest].filter(Boolean).join('/') };
  };
  const out: Endpoint[] = [];
  if (!opts.forPush) {
    for (const m of r.mirrors) {
      const mode = r.mirrorByDigestOnly ? 'digest-only' : m.pullFromMirror;
      if (mode === 'digest-only' && !opts.byDigest) continue;
      if (mode === 'tag-only' && opts.byDigest) continue;
      const e = rewrite(m.location);
      out.push({ ...e, insecure: m.insecure || insecureFlag(e.host), mirror: true });
    }
  }
  const primary = rewrite(r.location);
  out.push({ ...primary, insecure: r.insecure || insecureFlag(primary.host), mirror: false });
  return out;
}
