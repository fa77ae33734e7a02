// Conformance: dockerignore/patterns.json (moby/patternmatcher semantics) and
// dockerignore/ignorefile-parse.json (ignore-file text → pattern list). One test per case.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceRoot } from '../helpers/repo.js';
import { CaseCounter } from '../helpers/case-counter.js';
import { DockerignoreError, PatternMatcher, parseDockerignore } from '../../src/dockerfile/dockerignore.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const dir = join(conformanceRoot, 'dockerignore');
const test = suite('dockerignore');
const counter = new CaseCounter('dockerignore');

const patterns = JSON.parse(readFileSync(join(dir, 'patterns.json'), 'utf8'));
for (const c of patterns.cases as any[]) {
  counter.add(test, 'patterns.json', `${c.id} ${JSON.stringify(c.patterns)} ${JSON.stringify(c.path)}`, () => {
    if (c.expectError !== undefined) {
      // The error may come from building the matcher or from matching; asking twice gives it again.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const m = new PatternMatcher(c.patterns);
          const r = m.matches(c.path);
          assert.unreachable(`expected an error, got ${r}`);
        } catch (e) {
          if (!(e instanceof DockerignoreError)) throw e;
          assert.ok(e.message.includes(c.expectError), `${e.message} lacks ${c.expectError}`);
        }
      }
      return;
    }
    const m = new PatternMatcher(c.patterns);
    assert.is(m.matches(c.path), c.expectMatch);
    assert.is(m.matches(c.path), c.expectMatch, 'same answer when asked twice');
  });
}

const parse = JSON.parse(readFileSync(join(dir, 'ignorefile-parse.json'), 'utf8'));
for (const c of parse.cases as any[]) {
  counter.add(test, 'ignorefile-parse.json', c.id, () => {
    assert.equal(parseDockerignore(c.text), c.expect);
  });
}

test.after(() => counter.report());
test.run();
