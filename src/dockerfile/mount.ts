/**
 * RUN --mount specs (`type=cache,target=/root/.cache,sharing=locked`), parsed
 * into typed fields with BuildKit's rules and error texts.
 *
 * Values may hold build-arg references (`target=$DIR`). Without an expander,
 * such a value is kept verbatim and its validation deferred: the build engine
 * calls parseMountSpec again with an expander once ARG values are known.
 */
import { suggest } from '../util/suggest.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

export interface Mount {
  type: MountType;
  /** Stage name, stage index or image to mount from (bind, cache). */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** tmpfs size in bytes. */
  sizeLimit?: number;
  /** cache id, secret id, ssh id. */
  id?: string;
  sharing?: CacheSharing;
  /** secret/ssh: fail when not provided. */
  required: boolean;
  /** secret: expose as this environment variable. */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Fields whose value needs variable expansion before it can be checked. */
  deferred: string[];
}

export class MountError extends Error {}

const TYPES: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/** One CSV record, as Go's encoding/csv reads it (quotes only at field start, "" inside quotes). */
export function parseCsvRecord(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new MountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < n && line[i] !== ',' && line[i] !== '\n' && line[i] !== '\r') throw new MountError('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      while (i < n && line[i] !== ',' && line[i] !== '\n') {
        if (line[i] === '"') throw new MountError('failed to parse csv mounts: bare " in non-quoted-field');
        field += line[i++];
      }
      if (field.endsWith('\r') && (i >= n || line[i] === '\n')) field = field.slice(0, -1);
    }
    fields.push(field);
    if (i < n && line[i] === ',') {
      i++;
      continue;
    }
    return fields;
  }
}

function parseBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new MountError(`invalid value for ${key}: ${v}`);
}

function parseUint(v: string, base: 8 | 10, what: string): number {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = re.test(v) ? parseInt(v, base) : NaN;
  if (!Number.isFinite(n) || n > 0xffffffff) throw new MountError(`invalid value ${v} for ${what}`);
  return n;
}

/** docker/go-units RAMInBytes: "64m", "1.5GiB", "100" (binary multiples). */
export function parseRamBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) throw new MountError(`invalid size: '${v}'`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Math.trunc(parseFloat(m[1]!) * mult);
}

/**
 * Parse one --mount value. `expand` maps a raw value to its expanded form;
 * without it, values containing "$" are kept raw and listed in `deferred`.
 */
export function parseMountSpec(spec: string, expand?: (word: string) => string): Mount {
  const fields = parseCsvRecord(spec);
  const m: Mount = { type: 'bind', readOnly: false, required: false, deferred: [] };
  let roAuto = true;
  // With `type=$VAR` the type is unknown until expansion: type-dependent checks wait too.
  const typeLater = !expand && fields.some((f) => /^type=/i.test(f) && f.includes('$'));
  const typeIs = (...types: MountType[]) => typeLater || types.includes(m.type);
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    if (eq === -1) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (typeIs('secret', 'ssh')) {
            m.required = true;
            continue;
          }
          throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        default:
          throw new MountError(`invalid field '${field}' must be a key=value pair`);
      }
    }
    let value = field.slice(eq + 1);
    if (key === 'from') {
      const i = value.indexOf('$');
      if (i !== -1 && i !== value.length - 1) throw new MountError(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else if (expand) {
      value = expand(value);
    } else if (value.includes('$')) {
      // Keep it for the build engine to expand and re-check.
      m.deferred.push(key);
      switch (key) {
        case 'source': case 'src': m.source = value; break;
        case 'target': case 'dst': case 'destination': m.target = value; break;
        case 'id': m.id = value; break;
        case 'env': m.env = value; break;
        case 'type': case 'readonly': case 'ro': case 'readwrite': case 'rw': case 'required':
        case 'size': case 'sharing': case 'mode': case 'uid': case 'gid':
          break;
        default: {
          const s = suggest(key, KEYS);
          throw new MountError(`unexpected key '${key}' in '${field}'${s ? ` (did you mean ${s}?)` : ''}`);
        }
      }
      continue;
    }
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!TYPES.includes(t as MountType)) {
          const s = suggest(value, TYPES);
          throw new MountError(`unsupported mount type ${JSON.stringify(value)}${s ? ` (did you mean ${s}?)` : ''}`);
        }
        m.type = t as MountType;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'readonly': case 'ro':
        m.readOnly = parseBool(key, value);
        roAuto = false;
        break;
      case 'readwrite': case 'rw':
        m.readOnly = !parseBool(key, value);
        roAuto = false;
        break;
      case 'required':
        if (!typeIs('secret', 'ssh')) throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case 'size':
        if (!typeIs('tmpfs')) throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        try {
          m.sizeLimit = parseRamBytes(value);
        } catch {
          throw new MountError(`invalid value for ${key}: ${value}`);
        }
        break;
      case 'id': m.id = value; break;
      case 'sharing': {
        if (!typeIs('cache')) throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`);
        const s = value.toLowerCase();
        if (s !== 'shared' && s !== 'private' && s !== 'locked') throw new MountError(`unsupported sharing value ${JSON.stringify(value)}`);
        m.sharing = s;
        break;
      }
      case 'mode': m.mode = parseUint(value, 8, 'mode'); break;
      case 'uid': m.uid = parseUint(value, 10, 'uid'); break;
      case 'gid': m.gid = parseUint(value, 10, 'gid'); break;
      case 'env': m.env = value; break;
      default: {
        const s = suggest(key, KEYS);
        throw new MountError(`unexpected key '${key}' in '${field}'${s ? ` (did you mean ${s}?)` : ''}`);
      }
    }
  }

  if (typeLater) return m;
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new MountError(`mode not allowed for ${JSON.stringify(m.type)} type mounts`);
    if (m.uid !== undefined) throw new MountError(`uid not allowed for ${JSON.stringify(m.type)} type mounts`);
    if (m.gid !== undefined) throw new MountError(`gid not allowed for ${JSON.stringify(m.type)} type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') throw new MountError(`invalid cache sharing set for ${m.type} mount`);
  if (m.type === 'secret') {
    if (m.from !== undefined) throw new MountError('secret mount should not have a from');
    if (!m.source && !m.target && !m.id) throw new MountError('invalid secret mount. one of source, target required');
    if (m.source && m.id) throw new MountError("both source and id can't be set");
  }
  if (m.env !== undefined && m.type !== 'secret') throw new MountError(`unexpected key 'env' for mount type '${m.type}'`);
  if ((m.type === 'bind' || m.type === 'cache' || m.type === 'tmpfs') && !m.target) {
    throw new MountError(`mount type ${JSON.stringify(m.type)} requires a target`);
  }
  if (m.type === 'cache' && m.sharing === undefined) m.sharing = 'shared';
  return m;
}
