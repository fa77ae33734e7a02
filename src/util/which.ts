import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Absolute path of a host executable on $PATH (plus the system dirs), or undefined. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...path.split(':'), ...SYSTEM_PATH.split(':')]) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}
