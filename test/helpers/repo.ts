import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`package.json not found above ${start}`);
    dir = up;
  }
  return dir;
}

/** The repository root, whether tests run compiled (dist/test/…) or through tsx. */
export const repoRoot = findRoot(dirname(fileURLToPath(import.meta.url)));
/** ../shared/conformance beside the repository (KILN_CONFORMANCE overrides). */
export const conformanceRoot = process.env.KILN_CONFORMANCE ?? join(repoRoot, '..', 'shared', 'conformance');
/** The built CLI as users run it, the bundled `kiln` bin (run `npm run build` first). */
export const kilnBin = join(repoRoot, 'dist', 'src', 'cli', 'kiln.js');
