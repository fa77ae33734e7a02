import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../../helpers/repo.js';

// DESIGN.md: src/ folders, imports point only down this list.
const ORDER = ['index.ts', 'cli', 'export', 'build', 'dockerfile', 'sandbox', 'snapshot', 'layer', 'registry', 'content', 'image', 'oci', 'util'];
const BOTTOM = new Set(['util', 'errors.ts']); // importable from anywhere
const NO_NPM = new Set(['oci', 'dockerfile']);

function rank(unit: string): number {
  if (BOTTOM.has(unit)) return ORDER.length;
  const r = ORDER.indexOf(unit);
  if (r === -1) throw new Error(`src/${unit} is not in the DESIGN.md layer list`);
  return r;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const src = join(repoRoot, 'src');
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function unitOf(file: string): string {
  const rel = relative(src, file);
  return rel.includes('/') ? rel.split('/')[0]! : rel;
}

const builtins = new Set(builtinModules);

test('every import points down the layer list, and oci/ and dockerfile/ import no npm package', () => {
  const problems: string[] = [];
  for (const file of walk(src)) {
    const from = unitOf(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        const to = unitOf(target.replace(/\.js$/, '.ts'));
        if (to === from) continue;
        if (rank(to) < rank(from)) problems.push(`${relative(repoRoot, file)} imports ${spec} (${from} may not import ${to})`);
      } else if (NO_NPM.has(from) && !spec.startsWith('node:') && !builtins.has(spec)) {
        problems.push(`${relative(repoRoot, file)} imports npm package "${spec}" (${from}/ must not)`);
      }
    }
  }
  assert.equal(problems, []);
});

test('the layer check itself catches an upward import', () => {
  assert.ok(rank('oci') > rank('build'));
  assert.throws(() => rank('nonsense'));
});

test.run();
