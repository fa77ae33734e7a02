#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js and the ~100 modules it reaches) into one
// CommonJS file, dist/src/cli/kiln-bundle.cjs, which the `kiln` bin (dist/src/cli/kiln.js,
// compiled from src/cli/kiln.ts) loads with V8's code cache. Resolving and linking a hundred
// ES modules cost ~50 ms of every invocation; one file costs a few, and with the code cache
// the bundle is not even compiled. The npm packages a build loads (undici's client files,
// smol-toml) are bundled too, so the code cache covers them; the others stay external
// (required from node_modules when used), zstd-napi always (a native addon).
// The bundle sits in dist/src/cli/ so the paths the code computes from import.meta.url
// (package.json, runtime/) resolve as in the modules: the bin passes the bundle's URL in.
import { chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Packages every build loads (see above). */
const BUNDLED = new Set(['undici', 'smol-toml']);
await build({
  entryPoints: [join(root, 'dist', 'src', 'cli', 'main.js')],
  outfile: join(root, 'dist', 'src', 'cli', 'kiln-bundle.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  plugins: [
    {
      name: 'external-packages',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.path.startsWith('node:')) return undefined;
          const pkg = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
          return BUNDLED.has(pkg) ? undefined : { path: args.path, external: true };
        });
      },
    },
  ],
  // import() of npm packages and builtins becomes require(): a vm.Script has no ESM loader.
  supported: { 'dynamic-import': false },
  define: {
    // userns.ts re-executes the CLI entry it was loaded from: in the bundle, the bin.
    KILN_CLI_BUNDLE: 'true',
    // The bin wraps the bundle in a function with this parameter (see src/cli/kiln.ts).
    'import.meta.url': '__kilnBundleUrl',
  },
  logLevel: 'warning',
});
await chmod(join(root, 'dist', 'src', 'cli', 'kiln.js'), 0o755);
