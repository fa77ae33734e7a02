// Bounded fuzz (fixed seed, printed): any input to the shell lexer, the .dockerignore parser and
// matcher, and the reference parser gives a result or that module's own KilnError, never another
// exception (and, being linear-time, never a hang).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShellExpansionError, processWordWithMatches } from '../../../src/dockerfile/shell-lexer.js';
import { DockerignoreError, PatternMatcher, parseDockerignore } from '../../../src/dockerfile/dockerignore.js';
import { ReferenceFormatError, parseAnyReference, parseDockerRef } from '../../../src/oci/reference.js';

const SEED = 20261123;
const ALPHABET = ['$', '{', '}', ':', '-', '+', '?', '#', '%', '/', '\\', '`', '"', "'", 'a', 'B', '_', '1', ' ', '*', '[', ']', '^', '!', '.', '@', '한', '\n', '\r', '\ufeff'];

function generator(seed: number) {
  let s = seed;
  const rnd = (n: number) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
  return () => Array.from({ length: rnd(14) }, () => ALPHABET[rnd(ALPHABET.length)]).join('');
}

function only(kind: new (...args: never[]) => Error, what: string, input: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof kind)) assert.unreachable(`${what}(${JSON.stringify(input)}) threw ${String(e)} (seed ${SEED})`);
  }
}

test(`random words, ignore files and references (seed ${SEED}, 20000 inputs)`, () => {
  console.log(`input-fuzz seed ${SEED}`);
  const next = generator(SEED);
  const env = { a: 'x*y', B: '', _: '/a/' };
  for (let n = 0; n < 20000; n++) {
    const s = next();
    only(ShellExpansionError, 'processWord', s, () => processWordWithMatches(s, env, { escapeToken: n % 2 ? '\\' : '`' }));
    only(DockerignoreError, 'dockerignore', s, () => {
      const m = new PatternMatcher(parseDockerignore(s));
      m.matches('a/B/c.1');
      m.matchesUsingParentResults('a/B', m.matchesUsingParentResults('a', undefined).info);
    });
    only(ReferenceFormatError, 'parseDockerRef', s, () => parseDockerRef(s));
    only(ReferenceFormatError, 'parseAnyReference', s, () => parseAnyReference(s));
  }
});

test.run();
