/**
 * BuildKit parser testfiles (../shared/conformance/buildkit/frontend/dockerfile/parser):
 * every Dockerfile in testfiles/ must dump byte for byte as its `result`;
 * every Dockerfile in testfiles-negative/ must fail with a DockerfileError naming a line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dumpParseResult } from '../../src/dockerfile/dump.js';
import { parseDockerfile } from '../../src/dockerfile/parser.js';
import { DockerfileError } from '../../src/errors.js';
import { conformanceRoot } from '../helpers/repo.js';

const base = join(conformanceRoot, 'buildkit', 'frontend', 'dockerfile', 'parser');
const positives = readdirSync(join(base, 'testfiles')).sort();
const negatives = readdirSync(join(base, 'testfiles-negative')).sort();

const counts = { testfiles: [0, positives.length], negatives: [0, negatives.length] };

const positive = suite('parser testfiles');
for (const name of positives) {
  positive(name, () => {
    const dir = join(base, 'testfiles', name);
    const input = readFileSync(join(dir, 'Dockerfile'));
    const expected = readFileSync(join(dir, 'result'), 'utf8').replace(/\r\n/g, '\n');
    const got = dumpParseResult(parseDockerfile(input, { file: `${name}/Dockerfile` }));
    assert.fixture(got, expected);
    counts.testfiles[0]!++;
  });
}
positive.after(() => console.log(`  parser testfiles: ${counts.testfiles[0]}/${counts.testfiles[1]} passed`));
positive.run();

// Messages BuildKit gives (README §1); we match them too.
const negativeMessages: Record<string, string> = {
  empty_dockerfile: 'file with no instructions',
  only_comments: 'file with no instructions',
  env_no_value: 'ENV must have two arguments',
  'shykes-nested-json': 'when using JSON array syntax, arrays must be comprised of strings only',
};

const negative = suite('parser testfiles-negative');
for (const name of negatives) {
  negative(name, () => {
    const input = readFileSync(join(base, 'testfiles-negative', name, 'Dockerfile'));
    let err: unknown;
    try {
      parseDockerfile(input, { file: `${name}/Dockerfile` });
    } catch (e) {
      err = e;
    }
    assert.instance(err, DockerfileError, 'parse must fail with a DockerfileError');
    const de = err as DockerfileError;
    assert.is(de.file, `${name}/Dockerfile`);
    assert.ok(de.range && de.range.startLine >= 1, 'error names a line');
    assert.match(de.message, new RegExp(`:${de.range!.startLine}:`));
    if (negativeMessages[name]) assert.is(de.detail, negativeMessages[name]);
    counts.negatives[0]!++;
  });
}
negative.after(() => console.log(`  parser testfiles-negative: ${counts.negatives[0]}/${counts.negatives[1]} passed`));
negative.run();
