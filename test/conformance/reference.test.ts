// Conformance: reference/reference.json (distribution/reference behaviour). Every case of every
// section is its own named test; per-section pass counts are printed after the run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceRoot } from '../helpers/repo.js';
import { CaseCounter } from '../helpers/case-counter.js';
import {
  DigestReference,
  ImageReference,
  ReferenceFormatError,
  familiarMatch,
  parseAnyReference,
  parseCanonicalName,
  parseDockerRef,
  parseNormalizedNamed,
  parseReference,
  parseRepositoryName,
  referenceGrammar,
} from '../../src/oci/reference.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const data = JSON.parse(readFileSync(join(conformanceRoot, 'reference', 'reference.json'), 'utf8'));
const codes: Record<string, string> = data.errors.codes;
const test = suite('reference.json');
const counter = new CaseCounter('reference.json');

function expectCode(fn: () => unknown, code: string): void {
  try {
    const r = fn();
    assert.unreachable(`expected ${code}, got ${String(r)}`);
  } catch (e) {
    if (!(e instanceof ReferenceFormatError)) throw e;
    assert.is(e.reason, code);
    assert.is(e.message, codes[code]);
  }
}

function expectErrorContains(fn: () => unknown, text: string): void {
  try {
    const r = fn();
    assert.unreachable(`expected an error containing ${JSON.stringify(text)}, got ${String(r)}`);
  } catch (e) {
    if (!(e instanceof ReferenceFormatError)) throw e;
    assert.ok(e.message.includes(text), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(text)}`);
  }
}

const short = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}…(${s.length})` : s);

for (const c of data.parse.cases) {
  counter.add(test, 'parse', `${c.id} ${short(c.input)}`, () => {
    if (c.error) return expectCode(() => parseReference(c.input), c.error);
    const r = parseReference(c.input);
    assert.is(r.name(), c.name);
    assert.is(r.domain, c.domain);
    assert.is(r.tag ?? '', c.tag);
    assert.is(r.digest ?? '', c.digest);
    assert.is(r.toString(), c.input);
  });
}

data.withNameFailure.cases.forEach((c: any, i: number) => {
  counter.add(test, 'withNameFailure', `${i + 1} ${short(c.input)}`, () => expectCode(() => parseRepositoryName(c.input), c.error));
});

for (const c of data.domainAndPath.cases) {
  counter.add(test, 'domainAndPath', c.input, () => {
    const r = parseRepositoryName(c.input);
    assert.is(r.domain, c.domain);
    assert.is(r.path, c.path);
  });
}

for (const section of ['withTag', 'withDigest'] as const) {
  data[section].cases.forEach((c: any, i: number) => {
    counter.add(test, section, `${i + 1} ${c.combined}`, () => {
      let r: ImageReference = parseRepositoryName(c.name);
      // withTag cases attach the digest first; withDigest cases attach the tag first.
      if (section === 'withTag') {
        if (c.digest) r = r.withDigest(c.digest);
        r = r.withTag(c.tag);
      } else {
        if (c.tag) r = r.withTag(c.tag);
        r = r.withDigest(c.digest);
      }
      assert.is(r.toString(), c.combined);
    });
  });
}

for (const c of data.parseCanonicalName.cases) {
  counter.add(test, 'parseCanonicalName', c.input, () => {
    if (c.error) return expectCode(() => parseCanonicalName(c.input), c.error);
    const r = parseCanonicalName(c.input);
    assert.is(r.domain, c.domain);
    assert.is(r.path, c.path);
  });
}

for (const v of data.normalizedNameValidity.valid) {
  counter.add(test, 'normalizedNameValidity', `valid ${short(v)}`, () => {
    parseNormalizedNamed(v);
  });
}
for (const v of data.normalizedNameValidity.invalid) {
  counter.add(test, 'normalizedNameValidity', `invalid ${short(v)}`, () => {
    assert.throws(() => parseNormalizedNamed(v), (e: unknown) => e instanceof ReferenceFormatError);
  });
}

for (const c of data.repositoryInfo.cases) {
  c.inputs.forEach((input: string, i: number) => {
    counter.add(test, 'repositoryInfo', `${c.full} via #${i + 1} ${input}`, () => {
      const r = parseNormalizedNamed(input);
      assert.is(r.familiarString(), c.familiar);
      assert.is(r.familiarName(), c.familiar);
      assert.is(r.toString(), c.full);
      assert.is(r.name(), c.full);
      assert.is(r.domain, c.domain);
      assert.is(r.path, c.path);
    });
  });
}

for (const c of data.normalizedDomainPath.cases) {
  counter.add(test, 'normalizedDomainPath', c.input, () => {
    const r = parseNormalizedNamed(c.input);
    assert.is(r.domain, c.domain);
    assert.is(r.path, c.path);
  });
}

for (const c of data.parseAny.cases) {
  counter.add(test, 'parseAny', short(c.input), () => {
    const r = parseAnyReference(c.input);
    assert.is(r.toString(), c.string);
    assert.is(r.kind, c.kind);
    if (c.kind === 'digest') assert.ok(r instanceof DigestReference);
  });
}

for (const section of ['dockerRef', 'dockerRefDerived'] as const) {
  for (const c of data[section].cases) {
    counter.add(test, section, short(c.input) || '(empty)', () => {
      if (c.errorContains !== undefined) return expectErrorContains(() => parseDockerRef(c.input), c.errorContains);
      assert.is(parseDockerRef(c.input).toString(), c.expect);
    });
  }
}

counter.add(test, 'tagAndDigest', data.tagAndDigest.input, () => {
  const r = parseNormalizedNamed(data.tagAndDigest.input);
  assert.is(r.toString(), data.tagAndDigest.full);
  assert.is(r.familiarString(), data.tagAndDigest.familiar);
});

data.invalidComponents.cases.forEach((c: any, i: number) => {
  counter.add(test, 'invalidComponents', `${i + 1} ${c.op}`, () => {
    assert.ok(c.error);
    const run = () => {
      if (c.op === 'parseNormalized') return parseNormalizedNamed(c.input);
      const named = parseNormalizedNamed(c.name);
      if (c.op === 'withTag') return named.withTag(c.tag);
      if (c.op === 'withDigest') return named.withDigest(c.digest);
      throw new Error(`unknown op ${c.op}`);
    };
    assert.throws(run, (e: unknown) => e instanceof ReferenceFormatError);
  });
});

for (const c of data.familiarMatch.cases) {
  counter.add(test, 'familiarMatch', `${c.pattern} ~ ${c.reference}`, () => {
    assert.is(familiarMatch(c.pattern, parseNormalizedNamed(c.reference)), c.match);
  });
}

for (const c of data.grammar.domainAndPort.cases) {
  counter.add(test, 'grammar.domainAndPort', c.input, () => {
    assert.is(referenceGrammar.domainAndPort.test(c.input), c.match);
  });
}
for (const c of data.grammar.name.cases) {
  counter.add(test, 'grammar.name', short(c.input) || '(empty)', () => {
    const m = referenceGrammar.name.exec(c.input);
    assert.is(m !== null, c.match);
    if (m && c.domain !== undefined) {
      assert.is(m[1] ?? '', c.domain);
      assert.is(m[2], c.remainder);
    }
  });
}
for (const c of data.grammar.reference.cases) {
  counter.add(test, 'grammar.reference', short(c.input), () => {
    const m = referenceGrammar.reference.exec(c.input);
    assert.is(m !== null, c.match);
    if (m) {
      assert.is(m[1], c.name);
      assert.is(m[2] ?? '', c.tag);
      assert.is(m[3] ?? '', c.digest);
    }
  });
}
for (const c of data.grammar.identifier.cases) {
  counter.add(test, 'grammar.identifier', short(c.input), () => {
    assert.is(referenceGrammar.identifier.test(c.input), c.match);
  });
}

// Kiln's own helpers the registry client relies on.
test('registryHost/repository: Docker Hub maps to registry-1.docker.io', () => {
  const r = parseDockerRef('nginx');
  assert.is(r.registryHost, 'registry-1.docker.io');
  assert.is(r.repository, 'library/nginx');
  assert.is(r.manifestReference, 'latest');
  const p = parseDockerRef('127.0.0.1:5000/a/b@sha256:' + 'f'.repeat(64));
  assert.is(p.registryHost, '127.0.0.1:5000');
  assert.is(p.repository, 'a/b');
  assert.is(p.manifestReference, 'sha256:' + 'f'.repeat(64));
});

test.after(() => counter.report());
test.run();
