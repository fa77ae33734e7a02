/**
 * restated/heredocs.json: heredoc parsing (parse, marker, lines, chomp) and the
 * COPY/RUN heredoc semantics of the instruction layer. Each case is its own test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chompHeredoc, HeredocSyntaxError, heredocsFromLine, parseHeredocMarker } from '../../src/dockerfile/heredoc.js';
import { type CopyInstruction, parseInstruction, type RunInstruction } from '../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../src/dockerfile/parser.js';
import { DockerfileError } from '../../src/errors.js';
import { conformanceRoot } from '../helpers/repo.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const data: any = JSON.parse(readFileSync(join(conformanceRoot, 'buildkit', 'restated', 'heredocs.json'), 'utf8'));

const counts = new Map<string, [number, number]>();
const test = suite('heredocs.json');
function add(set: string, id: string, fn: () => void): void {
  const c = counts.get(set) ?? [0, 0];
  c[1]++;
  counts.set(set, c);
  test(`${set} ${id}`, () => {
    fn();
    counts.get(set)![0]++;
  });
}

for (const c of data.parse.cases) {
  add('parse', c.id, () => {
    const r = parseDockerfile(c.dockerfile);
    const got = r.nodes.map((n) => (n.heredocs.length === 0 ? null : n.heredocs.map((h) => ({ name: h.name, content: h.content, expand: h.expand, chomp: h.chomp, fd: h.fileDescriptor }))));
    assert.equal(got, c.expectHeredocs);
  });
}

for (const w of data.marker.valid) {
  add('marker', `valid ${JSON.stringify(w)}`, () => {
    const h = parseHeredocMarker(w);
    assert.ok(h, 'recognised');
    assert.is(h!.name, 'EOF');
  });
}
for (const w of data.marker.invalid) {
  add('marker', `invalid ${JSON.stringify(w)}`, () => {
    assert.throws(() => parseHeredocMarker(w), (e: unknown) => e instanceof HeredocSyntaxError);
  });
}
for (const w of data.marker.notHeredoc) {
  add('marker', `notHeredoc ${JSON.stringify(w)}`, () => {
    assert.is(parseHeredocMarker(w), undefined);
  });
}

for (const c of data.lines.cases) {
  add('lines', JSON.stringify(c.line), () => {
    assert.equal(heredocsFromLine(c.line).map((h) => h.name), c.names);
  });
}

for (const [i, c] of data.chomp.cases.entries()) {
  add('chomp', String(i + 1), () => assert.is(chompHeredoc(c.input), c.output));
}

for (const c of data.copyInstruction.cases) {
  add('copyInstruction', c.id, () => {
    const ins = parseInstruction(parseDockerfile(c.dockerfile).nodes[0]!) as CopyInstruction;
    assert.is(ins.kind, 'COPY');
    assert.is(ins.dest, c.expect.dest);
    assert.equal(ins.sources, c.expect.sourcePaths);
    assert.equal(ins.contents, c.expect.sourceContents);
  });
}

for (const c of data.runInstruction.cases) {
  add('runInstruction', c.id, () => {
    const ins = parseInstruction(parseDockerfile(c.dockerfile).nodes[0]!) as RunInstruction;
    assert.is(ins.kind, 'RUN');
    assert.is(ins.command.prependShell, c.expect.prependShell);
    assert.equal(ins.command.args, c.expect.cmdLine);
    assert.equal(ins.files.map((f) => ({ name: f.name, data: f.data, chomp: f.chomp })), c.expect.files);
  });
}

for (const c of data.errors.cases) {
  add('errors', c.id, () => {
    const node = parseDockerfile(c.dockerfile, { file: 'Dockerfile' }).nodes[0]!;
    try {
      parseInstruction(node);
    } catch (e) {
      assert.instance(e, DockerfileError);
      assert.ok((e as DockerfileError).detail.includes(c.errorContains), (e as Error).message);
      assert.is((e as DockerfileError).range?.startLine, 1);
      return;
    }
    assert.unreachable('instruction must be refused');
  });
}

test.after(() => {
  for (const [set, [ok, all]] of counts) console.log(`  heredocs.json ${set}: ${ok}/${all} passed`);
});
test.run();
