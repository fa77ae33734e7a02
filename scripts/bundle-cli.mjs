#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and the ~100 modules it reaches) into one
// file, dist/src/cli/kiln.js, the `kiln` bin. Resolving and linking a hundred ES modules costs
// ~50 ms of every invocation, a fifth of a warm rebuild; one file costs a few. npm packages stay
// external (loaded from node_modules as usual). The bundle sits in dist/src/cli/ so the paths
// the code computes from import.meta.url (package.json, runtime/) resolve as in the modules.
import { chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'src', 'cli', 'kiln.js');
await build({
  entryPoints: [join(root, 'dist', 'src', 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  // userns.ts re-executes the CLI entry it was loaded from: in the bundle, the bundle itself.
  define: { KILN_CLI_BUNDLE: 'true' },
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
