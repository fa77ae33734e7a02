// Conformance: BuildKit's shell-lexer vectors (envVarTest, wordsTest in normal mode) and
// restated/shell-expansion.json with matched/unmatched tracking. Each data line is its own test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceRoot } from '../helpers/repo.js';
import { CaseCounter } from '../helpers/case-counter.js';
import { ShellExpansionError, ShellLexer } from '../../src/dockerfile/shell-lexer.js';

const shellDir = join(conformanceRoot, 'buildkit', 'frontend', 'dockerfile', 'shell');
const test = suite('shell-lexer');
const counter = new CaseCounter('shell-lexer');
const lexer = new ShellLexer({ escapeToken: '\\' });

function expectFailure(fn: () => unknown): void {
  try {
    const r = fn();
    assert.unreachable(`expected an expansion error, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof ShellExpansionError)) throw e;
  }
}

// envVarTest: PLATFORM|input|expected, single-word expansion, Unix: A and U lines.
const envVarEnv = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['NULL', ''],
]);
readFileSync(join(shellDir, 'envVarTest'), 'utf8')
  .split('\n')
  .forEach((line, idx) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const fields = line.split('|').map((f) => f.trim());
    if (fields.length !== 3) throw new Error(`envVarTest line ${idx + 1}: expected 3 fields`);
    const [platform, input, expected] = fields as [string, string, string];
    if (platform === 'W') return; // Windows-only lines (case-insensitive names) do not apply on Linux
    counter.add(test, 'envVarTest', `line ${idx + 1}: ${input}`, () => {
      if (expected === 'error') return expectFailure(() => lexer.processWord(input, envVarEnv));
      assert.is(lexer.processWord(input, envVarEnv), expected);
    });
  });

// wordsTest: ENV lines extend the environment for later lines; normal mode only (see README §2).
{
  const env: string[] = [];
  readFileSync(join(shellDir, 'wordsTest'), 'utf8')
    .split('\n')
    .forEach((line, idx) => {
      if (line.startsWith('#') || line === '') return;
      if (line.startsWith('ENV ')) {
        env.push(line.slice(4).replace(/^ +/, ''));
        return;
      }
      const bar = line.indexOf('|');
      if (bar === -1) throw new Error(`wordsTest line ${idx + 1}: no "|"`);
      const input = line.slice(0, bar).trim();
      const expected = line.slice(bar + 1).replace(/^ +/, '').split(',');
      const snapshot = [...env];
      counter.add(test, 'wordsTest', `line ${idx + 1}: ${input}`, () => {
        if (expected.length === 1 && expected[0] === 'error') return expectFailure(() => lexer.processWords(input, snapshot));
        assert.equal(lexer.processWords(input, snapshot), expected);
      });
    });
}

// restated/shell-expansion.json
{
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const data = JSON.parse(readFileSync(join(conformanceRoot, 'buildkit', 'restated', 'shell-expansion.json'), 'utf8'));
  const escaped = new ShellLexer({ escapeToken: data.escapeChar });
  for (const c of data.cases as any[]) {
    counter.add(test, 'shell-expansion.json', `${c.id} ${c.input}`, () => {
      const env = c.env as Record<string, string>;
      if (c.expectError) {
        try {
          const r = escaped.processWordWithMatches(c.input, env);
          assert.unreachable(`expected an error, got ${JSON.stringify(r.result)}`);
        } catch (e) {
          if (!(e instanceof ShellExpansionError)) throw e;
          if (c.errorContains) assert.ok(e.message.includes(c.errorContains), `${e.message} lacks ${c.errorContains}`);
        }
        return;
      }
      const r = escaped.processWordWithMatches(c.input, env);
      assert.is(r.result, c.expectResult);
      if (c.expectMatched) assert.equal([...r.matched].sort(), [...c.expectMatched].sort());
      if (c.expectUnmatched) assert.equal([...r.unmatched].sort(), [...c.expectUnmatched].sort());
    });
  }
}

test.after(() => counter.report());
test.run();
