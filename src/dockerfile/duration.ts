/**
 * Go's time.ParseDuration, in nanoseconds: "300ms", "-1.5h", "2h45m", "1µs".
 * A sign, then one or more decimal numbers each with a unit (ns us µs μs ms s m h);
 * "0" alone needs no unit. Error texts follow Go's.
 */
export class DurationError extends Error {}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
/** Largest int64, Go's overflow limit. */
const MAX_NS = 9223372036854775807n;

export function parseGoDuration(input: string): number {
  const bad = () => new DurationError(`time: invalid duration ${JSON.stringify(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw bad();
  let total = 0n;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const intPart = m[1]!;
    const frac = m[2];
    if (intPart === '' && (frac === undefined || frac === '')) throw bad();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]*/.exec(s)![0];
    if (u === '') throw new DurationError(`time: missing unit in duration ${JSON.stringify(input)}`);
    const unit = UNITS[u];
    if (unit === undefined) throw new DurationError(`time: unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(input)}`);
    s = s.slice(u.length);
    const scale = BigInt(unit);
    let v = BigInt(intPart === '' ? '0' : intPart) * scale;
    if (frac) {
      // truncate the fraction at nanosecond precision as Go does
      const digits = frac.slice(0, 30);
      v += (BigInt(digits) * scale) / 10n ** BigInt(digits.length);
    }
    total += v;
    if (total > MAX_NS) throw bad();
  }
  return Number(neg ? -total : total);
}

/** Format nanoseconds like Go's Duration.String for the common cases ("1m30s", "500ms"). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let v = Math.abs(ns);
  if (v < 1e3) return `${sign}${v}ns`;
  if (v < 1e6) return `${sign}${v / 1e3}µs`;
  if (v < 1e9) return `${sign}${v / 1e6}ms`;
  let out = '';
  const h = Math.floor(v / 3600e9);
  v -= h * 3600e9;
  const m = Math.floor(v / 60e9);
  v -= m * 60e9;
  if (h) out += `${h}h`;
  if (h || m) out += `${m}m`;
  return `${sign}${out}${v / 1e9}s`;
}
