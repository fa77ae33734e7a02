import { UsageError } from '../errors.js';

/** One `-o/--output` value, parsed (buildx CSV form). */
export type OutputSpec =
  | { type: 'image'; names: string[]; push: boolean }
  | { type: 'oci'; dest: string; names: string[] }
  | { type: 'docker'; dest: string; names: string[] }
  | { type: 'local'; dest: string }
  | { type: 'tar'; dest: string };

const TYPES = ['image', 'registry', 'oci', 'docker', 'local', 'tar'];

/**
 * Parse `type=oci,dest=out.tar`, `type=image,name=a,push=true`, a bare path
 * (= type=local,dest=PATH) or `-` (= type=tar to stdout). Unknown keys are
 * refused, never ignored.
 */
export function parseOutputSpec(value: string): OutputSpec {
  if (!value.includes('=')) {
    if (value === '-') return { type: 'tar', dest: '-' };
    return { type: 'local', dest: value };
  }
  const kv = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) throw new UsageError(`Invalid output "${value}": "${part}" is not key=value`);
    kv.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1));
  }
  const type = kv.get('type');
  if (!type) throw new UsageError(`Invalid output "${value}": type= is missing`, { hint: `Types: ${TYPES.join(', ')}` });
  const names = (kv.get('name') ?? '').split(/[,\s]+/).filter(Boolean);
  const allowed = (keys: string[]) => {
    for (const k of kv.keys()) {
      if (k !== 'type' && !keys.includes(k)) throw new UsageError(`Unsupported output attribute "${k}" for type=${type}`, { hint: `Supported: ${keys.join(', ') || '(none)'}` });
    }
  };
  const bool = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) return false;
    if (v === 'true' || v === '') return true;
    if (v === 'false') return false;
    throw new UsageError(`Invalid output attribute ${k}="${v}": expected true or false`);
  };
  const dest = () => {
    const d = kv.get('dest');
    if (!d) throw new UsageError(`Output type=${type} needs dest=`);
    return d;
  };
  switch (type) {
    case 'image':
      allowed(['name', 'push']);
      return { type: 'image', names, push: bool('push') };
    case 'registry':
      allowed(['name']);
      return { type: 'image', names, push: true };
    case 'oci':
      allowed(['dest', 'name']);
      return { type: 'oci', dest: dest(), names };
    case 'docker':
      allowed(['dest', 'name']);
      return { type: 'docker', dest: dest(), names };
    case 'local':
      allowed(['dest']);
      return { type: 'local', dest: dest() };
    case 'tar':
      allowed(['dest']);
      return { type: 'tar', dest: dest() };
    default:
      throw new UsageError(`Unknown output type "${type}"`, { hint: `Types: ${TYPES.join(', ')}` });
  }
}
