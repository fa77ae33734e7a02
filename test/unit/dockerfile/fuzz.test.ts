/**
 * Bad input never escapes as anything but a DockerfileError: random bytes and
 * mutations of the BuildKit testfiles go through the parser, the dumper, the
 * instruction layer and stage splitting. Bounded in count and time; the seed
 * is fixed and printed (KILN_FUZZ_SEED overrides it to replay a run).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectSyntax } from '../../../src/dockerfile/directives.js';
import { dumpParseResult } from '../../../src/dockerfile/dump.js';
import { parseInstruction } from '../../../src/dockerfile/instructions.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { parseStages } from '../../../src/dockerfile/stages.js';
import { DockerfileError } from '../../../src/errors.js';
import { conformanceRoot } from '../../helpers/repo.js';

const SEED = Number(process.env.KILN_FUZZ_SEED ?? 0x6b696c6e);
const COUNT = 3000;
const BUDGET_MS = 8000;

/** mulberry32: small, fast, deterministic. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const base = join(conformanceRoot, 'buildkit', 'frontend', 'dockerfile', 'parser');
const corpus: Buffer[] = [
  ...readdirSync(join(base, 'testfiles')).map((d) => readFileSync(join(base, 'testfiles', d, 'Dockerfile'))),
  ...readdirSync(join(base, 'testfiles-negative')).map((d) => readFileSync(join(base, 'testfiles-negative', d, 'Dockerfile'))),
  Buffer.from('FROM a AS b\nRUN <<EOF\necho\nEOF\nCOPY <<-X <<Y /d\n\tx\n\tX\ny\nY\nONBUILD RUN <<Z\nz\nZ\n'),
  Buffer.from('ARG V=1\nFROM --platform=$BUILDPLATFORM img:$V AS one\nRUN --mount=type=secret,id=s,required --network=none x\nHEALTHCHECK --interval=1s --retries=2 CMD ["a"]\n'),
  Buffer.from('# escape=`\nFROM x\nRUN a `\n  b\nSHELL ["sh", "-c"]\nADD --checksum=sha256:00 --link --chmod=644 a b\n'),
];

const TOKENS = [
  '\\\n', '`\n', '\n', '\r\n', '\t', ' ', '<<EOF', '<<-EOF', "<<'EOF'", 'EOF\n', '"', "'", '[', ']', '["a",', '{', '}', '#', '# escape=`\n',
  '# syntax=x\n', '--', '--mount=', 'type=cache,target=/x', '=', '${', '$', 'ONBUILD ', 'RUN ', 'COPY ', 'ADD ', 'FROM ', 'ARG ', 'ENV ',
  'LABEL ', 'HEALTHCHECK ', 'CMD ', 'SHELL ', 'EXPOSE ', 'VOLUME ', 'USER ', 'WORKDIR ', 'STOPSIGNAL ', 'MAINTAINER ', 'AS ', 'NONE',
  '--interval=', '--retries=x', '\u0000', '\uFEFF', '\u00a0', '\u2028', '♥', '\\', '\\\\', '3<<', '<< ', '<<- ', "<<'", '<<"', "COPY <<'X /d\n", 'ADD a <<"B\n', '--mount=type=$T,',
];

function mutate(r: () => number, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const ops = 1 + Math.floor(r() * 6);
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(r() * (b.length + 1));
    switch (Math.floor(r() * 7)) {
      case 0: // flip a byte
        if (b.length) b[Math.min(at, b.length - 1)] = Math.floor(r() * 256);
        break;
      case 1: // insert a token
        b = Buffer.concat([b.subarray(0, at), Buffer.from(TOKENS[Math.floor(r() * TOKENS.length)]!), b.subarray(at)]);
        break;
      case 2: // delete a span
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + Math.floor(r() * 40)))]);
        break;
      case 3: // truncate
        b = b.subarray(0, at);
        break;
      case 4: // splice with another corpus file
        {
          const other = corpus[Math.floor(r() * corpus.length)]!;
          const from = Math.floor(r() * other.length);
          b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + Math.floor(r() * 200))]);
        }
        break;
      case 5: // duplicate a span
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + Math.floor(r() * 80)), b.subarray(at)]);
        break;
      default: // random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: Math.floor(r() * 16) }, () => Math.floor(r() * 256))), b.subarray(at)]);
    }
  }
  return b;
}

function check(input: Buffer, label: string): void {
  for (const run of [
    () => dumpParseResult(parseDockerfile(input, { file: 'fuzz/Dockerfile' })),
    () => parseStages(input, { file: 'fuzz/Dockerfile' }),
    // every node on its own, not only up to the first refused one
    ...(() => {
      try {
        return parseDockerfile(input, { file: 'fuzz/Dockerfile' }).nodes.map((n) => () => parseInstruction(n, 'fuzz/Dockerfile'));
      } catch {
        return [];
      }
    })(),
    () => detectSyntax(input),
  ]) {
    try {
      run();
    } catch (e) {
      if (!(e instanceof DockerfileError)) {
        throw new Error(`${label}: unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\ninput (${input.length} bytes, base64): ${input.length <= 4096 ? input.toString('base64') : input.subarray(0, 200).toString('base64') + '…'}`);
      }
      assert.is(e.file, 'fuzz/Dockerfile', `${label}: error names the file`);
      assert.ok(e.range && e.range.startLine >= 1 && e.range.endLine >= e.range.startLine, `${label}: error names a line (${e.message})`);
    }
  }
}

test(`fuzz: ${COUNT} random and mutated inputs (seed ${SEED})`, () => {
  console.log(`  dockerfile fuzz seed: ${SEED} (replay with KILN_FUZZ_SEED=${SEED})`);
  const r = rng(SEED);
  const started = Date.now();
  let slowest = 0;
  let done = 0;
  for (; done < COUNT; done++) {
    if (Date.now() - started > BUDGET_MS) break;
    let input: Buffer;
    const pick = r();
    if (pick < 0.15) input = Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256)));
    else if (pick < 0.25) input = Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => TOKENS[Math.floor(r() * TOKENS.length)]).join(''));
    else input = mutate(r, corpus[Math.floor(r() * corpus.length)]!);
    const t0 = Date.now();
    check(input, `case ${done}`);
    slowest = Math.max(slowest, Date.now() - t0);
  }
  // Pathological shapes: very long lines and deep nesting must stay fast.
  const long = [
    Buffer.from('FROM a\nCMD ' + '['.repeat(60000) + '\n'),
    Buffer.from('# escape=' + ' '.repeat(60000) + 'x\nFROM a\n'),
    Buffer.from('FROM a\n' + 'ONBUILD '.repeat(8000) + 'RUN x\n'),
    Buffer.from('FROM a\nRUN ' + '<<'.repeat(30000) + '\n'),
    Buffer.from('FROM a\nENV ' + 'a=b '.repeat(16000) + '\n'),
    Buffer.from('FROM a\nRUN ' + '\\ '.repeat(30000) + '\n'),
    Buffer.from('FROM a\nRUN ' + '"'.repeat(60000) + ' <<x\n'),
    Buffer.from('FROM a\nCOPY ' + '<<a '.repeat(15000) + ' /x\n'),
    Buffer.from('FROM a\nRUN ' + '${a:-'.repeat(10000) + '<<x\n'),
    Buffer.from('FROM a\n' + 'RUN a \\\n'.repeat(30000) + '\n'),
    Buffer.from('FROM a\n' + 'RUN <<a\n'.repeat(20000) + '\n'),
  ];
  for (const [i, input] of long.entries()) {
    const t0 = Date.now();
    check(input, `long ${i}`);
    slowest = Math.max(slowest, Date.now() - t0);
  }
  const elapsed = Date.now() - started;
  console.log(`  dockerfile fuzz: ${done} inputs + ${long.length} long ones in ${elapsed} ms, slowest ${slowest} ms`);
  assert.ok(done >= 500, `at least 500 inputs ran within the budget (ran ${done})`);
  assert.ok(slowest < 5000, `no input took 5 s or more (slowest ${slowest} ms); the long inputs take well under 100 ms on an idle machine`);
});

test.run();
