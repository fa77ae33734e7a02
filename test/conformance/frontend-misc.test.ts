/**
 * restated/frontend-misc.json: instruction errors, doc comments, duration flags,
 * parseWords, line numbers, empty-continuation warnings, line length, JSON
 * arrays, directives and name-value parsing. Each case is its own test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { detectDirective, detectSyntax, parseDirectives } from '../../src/dockerfile/directives.js';
import { type HealthcheckInstruction, parseInstruction } from '../../src/dockerfile/instructions.js';
import { decodeJsonArray } from '../../src/dockerfile/json-array.js';
import { parseDockerfile, parseWords } from '../../src/dockerfile/parser.js';
import { parseStages } from '../../src/dockerfile/stages.js';
import { DockerfileError } from '../../src/errors.js';
import { conformanceRoot } from '../helpers/repo.js';

const restated = join(conformanceRoot, 'buildkit', 'restated');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const data: any = JSON.parse(readFileSync(join(restated, 'frontend-misc.json'), 'utf8'));

const counts = new Map<string, [number, number]>();
const test = suite('frontend-misc.json');
function add(set: string, id: string, fn: () => void): void {
  const c = counts.get(set) ?? [0, 0];
  c[1]++;
  counts.set(set, c);
  test(`${set} ${id}`, () => {
    fn();
    counts.get(set)![0]++;
  });
}

/** Parse, then type every node; return the first DockerfileError. */
function firstError(text: string): DockerfileError {
  try {
    for (const node of parseDockerfile(text).nodes) parseInstruction(node);
  } catch (e) {
    assert.instance(e, DockerfileError);
    const de = e as DockerfileError;
    assert.ok(de.range && de.range.startLine >= 1, 'the error names a line');
    return de;
  }
  return assert.unreachable(`expected an error for ${JSON.stringify(text)}`) as never;
}

for (const c of data.instructionErrors.cases) {
  add('instructionErrors', c.id, () => {
    const e = firstError(c.dockerfile);
    if (c.errorEquals !== undefined) assert.is(e.detail, c.errorEquals);
    else assert.ok(e.detail.includes(c.errorContains), `${JSON.stringify(e.detail)} should contain ${JSON.stringify(c.errorContains)}`);
  });
}

for (const c of data.instructionOk) {
  add('instructionOk', c.id, () => {
    const ins = parseInstruction(parseDockerfile(c.dockerfile).nodes[0]!);
    assert.is(ins.kind, c.expect.instruction);
    if (c.expect.flagsUsed) assert.equal(ins.flagsUsed, c.expect.flagsUsed);
    if (c.expect.healthTest) assert.equal((ins as HealthcheckInstruction).health.test, c.expect.healthTest);
  });
}

add('docComments', data.docComments.id, () => {
  const df = parseStages(data.docComments.dockerfile);
  const exp = data.docComments.expect;
  assert.equal(df.metaArgs.flatMap((a) => a.args.map((x) => ({ key: x.key, docComment: x.docComment }))), exp.metaArgs);
  assert.is(df.stages.length, exp.stages.length);
  exp.stages.forEach((s: { name: string; docComment: string; args: unknown[] }, i: number) => {
    const st = df.stages[i]!;
    assert.is(st.name, s.name);
    assert.is(st.from.docComment, s.docComment);
    const args = st.instructions.flatMap((ins) => (ins.kind === 'ARG' ? ins.args.map((x) => ({ key: x.key, docComment: x.docComment })) : []));
    assert.equal(args, s.args);
  });
});

for (const c of data.durationFlags.cases) {
  add('durationFlags', c.value, () => {
    const text = `HEALTHCHECK --interval=${c.value} CMD ["true"]`;
    if (c.ok) {
      parseInstruction(parseDockerfile(text).nodes[0]!);
    } else {
      assert.ok(firstError(text).detail.includes(c.errorContains));
    }
  });
}

for (const c of data.parseWords.cases) {
  add('parseWords', JSON.stringify(c.input), () => assert.equal(parseWords(c.input, '\\'), c.expect));
}

add('lineNumbers', 'testfile-line', () => {
  const r = parseDockerfile(readFileSync(join(restated, data.lineNumbers.file)));
  const exp = data.lineNumbers.expect;
  assert.equal([r.range.startLine, r.range.endLine], [exp.start, exp.end]);
  assert.equal(r.nodes.map((n) => [n.range.startLine, n.range.endLine]), exp.children);
});

add('emptyContinuationWarnings', 'dockerfile', () => {
  const r = parseDockerfile(data.emptyContinuationWarnings.dockerfile);
  const exp = data.emptyContinuationWarnings.expect;
  assert.is(r.warnings.length, exp.warningCount);
  exp.warningsContain.forEach((parts: string[], i: number) => {
    for (const p of parts) assert.ok(r.warnings[i]!.short.includes(p), `${JSON.stringify(r.warnings[i]!.short)} contains ${JSON.stringify(p)}`);
    assert.ok(r.warnings[i]!.detail.includes('will become errors in a future release'));
  });
});

add('lineTooLong', '65536', () => {
  const text = data.lineTooLong.dockerfile_template.replace("{65536 times 'a'}", 'a'.repeat(65536));
  assert.ok(text.includes('a'.repeat(65536)) && !text.includes('{'));
  let err: unknown;
  try {
    parseDockerfile(text);
  } catch (e) {
    err = e;
  }
  assert.instance(err, DockerfileError);
  assert.is((err as DockerfileError).detail, data.lineTooLong.errorEquals);
  assert.is((err as DockerfileError).range?.startLine, 3);
  // one byte less is fine
  parseDockerfile(data.lineTooLong.dockerfile_template.replace("{65536 times 'a'}", 'a'.repeat(65535 - 'LABEL test='.length - 2)));
});

for (const c of data.jsonArrays.valid) {
  add('jsonArrays', `valid ${JSON.stringify(c.input)}`, () => assert.equal(decodeJsonArray(c.input), { kind: 'strings', values: c.expect }));
}
for (const input of data.jsonArrays.invalid) {
  add('jsonArrays', `invalid ${JSON.stringify(input)}`, () => {
    assert.equal(decodeJsonArray(input), { kind: 'not-strings' });
    // and the parser refuses it for exec-form instructions
    assert.ok(firstParseError(`CMD ${input}`).detail.includes('arrays must be comprised of strings only'));
  });
}

function firstParseError(text: string): DockerfileError {
  try {
    parseDockerfile(text);
  } catch (e) {
    assert.instance(e, DockerfileError);
    return e as DockerfileError;
  }
  return assert.unreachable('parse must fail') as never;
}

for (const c of data.directives.escape) {
  add('directives.escape', c.id, () => {
    assert.equal(parseDirectives(c.text).filter((d) => d.name === 'escape').map(({ name, value }) => ({ name, value })), c.expect);
  });
}

function textOf(c: { text: string; text_hex_prefix?: string }): Buffer {
  return Buffer.concat([Buffer.from(c.text_hex_prefix ?? '', 'hex'), Buffer.from(c.text, 'utf8')]);
}

for (const c of data.directives.syntax) {
  add('directives.syntax', c.id, () => {
    const d = detectSyntax(textOf(c));
    assert.is(d !== undefined, c.found);
    if (c.ref !== undefined) assert.is(d?.value ?? '', c.ref);
    if (c.cmdline !== undefined) assert.is(d?.cmdline ?? '', c.cmdline);
    if (c.line !== undefined) assert.is(d?.line, c.line);
  });
}

for (const c of data.directives.check) {
  add('directives.check', c.id, () => {
    const d = detectDirective('check', textOf(c));
    assert.is(d !== undefined, c.found);
    if (c.value !== undefined) assert.is(d?.value ?? '', c.value);
    if (c.cmdline !== undefined) assert.is(d?.cmdline ?? '', c.cmdline);
    if (c.line !== undefined) assert.is(d?.line, c.line);
  });
}

for (const c of data.nameValue.cases) {
  add('nameValue', `${c.instruction} ${c.args}`, () => {
    const text = `${c.instruction} ${c.args}`;
    if (c.expectError) {
      assert.ok(firstParseError(text).range!.startLine === 1);
      return;
    }
    assert.equal(parseDockerfile(text).nodes[0]!.args, c.expectWords);
  });
}

test.after(() => {
  for (const [set, [ok, all]] of counts) console.log(`  frontend-misc.json ${set}: ${ok}/${all} passed`);
});
test.run();
