import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dumpParseResult } from '../../../src/dockerfile/dump.js';
import { parseDockerfile } from '../../../src/dockerfile/parser.js';
import { goQuote } from '../../../src/dockerfile/text.js';
import { DockerfileError } from '../../../src/errors.js';

const dump = (text: string | Uint8Array) => dumpParseResult(parseDockerfile(text));

function fails(text: string): DockerfileError {
  try {
    parseDockerfile(text, { file: 'x/Dockerfile' });
  } catch (e) {
    assert.instance(e, DockerfileError);
    return e as DockerfileError;
  }
  return assert.unreachable('parse must fail') as never;
}

test('keywords are case-insensitive, dumped lower-case; unknown ones still parse', () => {
  assert.is(dump('from a\nRuN echo hi\nFOO bar baz\n'), '(from "a")\n(run "echo hi")\n(foo "")\n');
});

test('UTF-8 BOM (bytes or string) and CRLF line endings', () => {
  assert.is(dump(Buffer.from('\xef\xbb\xbfFROM a\r\nRUN b \\\r\n c\r\n', 'latin1')), '(from "a")\n(run "b  c")\n');
  assert.is(dump('\ufeffFROM a'), '(from "a")\n');
});

test('escape directive: backtick continues lines and is the word escape; later directives are comments', () => {
  const r = parseDockerfile('# escape=`\n# syntax=x/y\nFROM a\nRUN a `\n  b\n# escape=\\\nRUN c \\\nRUN d\n');
  assert.is(r.escapeToken, '`');
  assert.equal(r.directives, [
    { name: 'escape', value: '`', line: 1 },
    { name: 'syntax', value: 'x/y', line: 2 },
  ]);
  assert.is(dumpParseResult(r), '(from "a")\n(run "a   b")\n(run "c \\\\")\n(run "d")\n');
});

test('directives only count before the first comment, blank line or instruction', () => {
  assert.is(parseDockerfile('# hello\n# escape=`\nFROM a\n').escapeToken, '\\');
  assert.is(parseDockerfile('\n# escape=`\nFROM a\n').escapeToken, '\\');
  assert.is(parseDockerfile('# unknown=1\n# escape=`\nFROM a\n').escapeToken, '\\');
});

test('directive errors: repeated or invalid escape', () => {
  const dup = fails('# escape=`\n# escape=`\nFROM a\n');
  assert.is(dup.detail, 'only one escape parser directive can be used');
  assert.equal(dup.range, { startLine: 2, endLine: 2 });
  assert.is(fails('# escape=x\nFROM a\n').detail, "invalid escape token 'x' does not match ` or \\");
});

test('an escaped escape character at the end of a line is not a continuation', () => {
  assert.is(dump('FROM a\nRUN echo \\\\\nRUN b\n'), '(from "a")\n(run "echo \\\\\\\\")\n(run "b")\n');
});

test('comments and empty lines inside continuations; the warning names the instruction', () => {
  const r = parseDockerfile('FROM a\nRUN a \\\n# c\n\n  b\n');
  assert.is(dumpParseResult(r), '(from "a")\n(run "a   b")\n');
  assert.is(r.warnings.length, 1);
  assert.is(r.warnings[0]!.short, 'Empty continuation line found in: RUN a   b');
  assert.equal(r.nodes[1]!.range, { startLine: 2, endLine: 5 });
});

test('comments above an instruction are kept for doc comments', () => {
  const r = parseDockerfile('# one\n#two \nFROM a\nRUN b\n');
  assert.equal(r.nodes[0]!.comments, ['one', 'two']);
  assert.equal(r.nodes[1]!.comments, []);
});

test('heredocs: bodies, ranges, several per line, ONBUILD, <<- terminator', () => {
  const r = parseDockerfile('FROM a\nCOPY <<A <<-"B" /d/\na1\nA\n\tb1\n\tB\nONBUILD RUN <<X\nx\nX\nRUN <<- EOF\n');
  assert.equal(r.nodes[1]!.heredocs, [
    { name: 'A', fileDescriptor: 0, expand: true, chomp: false, content: 'a1\n' },
    { name: 'B', fileDescriptor: 0, expand: false, chomp: true, content: '\tb1\n' },
  ]);
  assert.equal(r.nodes[1]!.range, { startLine: 2, endLine: 6 });
  assert.equal(r.nodes[2]!.heredocs.map((h) => h.content), ['x\n']);
  assert.equal(r.nodes[2]!.range, { startLine: 7, endLine: 9 });
  assert.equal(r.nodes[3]!.heredocs, [], '"<<- EOF" with a space is not a heredoc');
  assert.is(dumpParseResult(r), '(from "a")\n(copy "<<A" "<<-\\"B\\"" "/d/")\n(onbuild (run "<<X"))\n(run "<<- EOF")\n');
});

test('heredoc errors: unterminated body, bad marker quoting', () => {
  const e = fails('FROM a\nRUN <<EOF\necho\n');
  assert.is(e.detail, 'unterminated heredoc');
  assert.equal(e.range, { startLine: 2, endLine: 3 });
  assert.is(e.instruction, 'RUN');
  // as in BuildKit, a line whose words cannot be split announces no heredoc
  assert.equal(parseDockerfile("FROM a\nRUN <<'EOF\nx\n").nodes.map((n) => n.heredocs.length), [0, 0, 0]);
});

test('JSON form: text after the array, or invalid JSON, falls back to shell form (buildkit#5107)', () => {
  assert.is(dump('CMD ["a"] trailing'), '(cmd "[\\"a\\"] trailing")\n');
  assert.is(dump('ENTRYPOINT []random string'), '(entrypoint "[]random string")\n');
  assert.is(dump('CMD ["a"]  '), '(cmd "a")\n');
  assert.is(dump("CMD ['a']"), "(cmd \"['a']\")\n");
  assert.is(dump('VOLUME [/a'), '(volume "[/a")\n');
  assert.is(dump('COPY ["a", "b"]'), '(copy "a" "b")\n');
  assert.is(fails('FROM a\nENTRYPOINT ["a", null]').detail, 'when using JSON array syntax, arrays must be comprised of strings only');
});

test('flags: quotes and escapes processed, -- ends them', () => {
  assert.is(dump('COPY --chown="a b" --x=\\"q -- --notaflag /d'), '(copy ["--chown=a b" "--x=\\"q"] "--notaflag" "/d")\n');
});

test('ENV/LABEL triples and the two-argument rule', () => {
  assert.is(dump('ENV a=1 b="2 3"\nLABEL k v w'), '(env "a" "1" "=" "b" "\\"2 3\\"" "=")\n(label "k" "v w" "")\n');
  assert.is(fails('FROM a\nENV x').detail, 'ENV must have two arguments');
});

test('errors: no instructions, line too long', () => {
  assert.is(fails('').detail, 'file with no instructions');
  assert.is(fails('# only\n\n').detail, 'file with no instructions');
  const e = fails('FROM a\nRUN ' + 'x'.repeat(65532) + '\n');
  assert.is(e.detail, 'dockerfile line greater than max allowed size of 65535');
  assert.equal(e.range, { startLine: 2, endLine: 2 });
  parseDockerfile('FROM a\nRUN ' + 'x'.repeat(65531) + '\n');
  // the limit counts bytes, not characters
  assert.is(fails('FROM a\nRUN ' + '♥'.repeat(21844) + '\n').detail, 'dockerfile line greater than max allowed size of 65535');
});

test('invalid UTF-8 is decoded with replacement characters, not refused', () => {
  assert.is(dump(Buffer.from([0x46, 0x52, 0x4f, 0x4d, 0x20, 0xff, 0x0a])), '(from "\ufffd")\n');
});

test('goQuote follows Go strconv.Quote', () => {
  assert.is(goQuote('a"b\\c\n\t\x00\x7f♥\u00a0\u2028\ufeff😀'), '"a\\"b\\\\c\\n\\t\\x00\\x7f♥\\u00a0\\u2028\\ufeff😀"');
});

test.run();
