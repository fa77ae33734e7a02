import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShellExpansionError, ShellLexer, processWord, processWordWithMatches, processWords } from '../../../src/dockerfile/shell-lexer.js';

test('backtick escape character (# escape=`)', () => {
  const lx = new ShellLexer({ escapeToken: '`' });
  assert.is(lx.processWord('C:\\dir`$X', { X: 'y' }), 'C:\\dir$X');
  assert.is(lx.processWord('"a`"b"', {}), 'a"b');
  assert.is(lx.processWord('"a\\b"', {}), 'a\\b');
});

test('env as an ordered K=V list: the later entry wins; missing is unset, empty is set', () => {
  assert.is(processWord('$A', ['A=1', 'A=2']), '2');
  assert.is(processWord('${B-unset}', ['A=1']), 'unset');
  assert.is(processWord('${B-unset}', ['B=']), '');
  assert.is(processWord('${B:-empty}', ['B=']), 'empty');
});

test('plain-object env ignores inherited properties', () => {
  assert.is(processWord('${constructor-none}', {}), 'none');
});

test('skipUnsetEnv keeps references to unset variables as written', () => {
  const opts = { skipUnsetEnv: true };
  assert.is(processWord('$A-$B-${C}-${D:-x}', { A: 'a' }, opts), 'a-$B-${C}-${D:-x}');
});

test('rawQuotes and rawEscapes keep the characters', () => {
  assert.is(processWord(`"a b"'c'`, {}, { rawQuotes: true }), `"a b"'c'`);
  assert.is(processWord('a\\ b', {}, { rawEscapes: true }), 'a\\ b');
});

test('skipProcessQuotes treats quotes as ordinary characters', () => {
  assert.is(processWord(`"a"'b'`, {}, { skipProcessQuotes: true }), `"a"'b'`);
});

test('words: quoted empty string and expanded whitespace', () => {
  assert.equal(processWords('a  "$X" b', { X: 'p q' }), ['a', 'p q', 'b']);
  assert.equal(processWords('$X', { X: '  p   q  ' }), ['p', 'q']);
});

test('replace-all follows Go: no empty match right after a match', () => {
  assert.is(processWord('${V//*/-}', { V: 'abc' }), '-');
  assert.is(processWord('${V//?/-}', { V: '한국어' }), '---');
  // $$ in a replacement is the (unset) special parameter $; an escaped $0 reaches Go's template as the match.
  assert.is(processWord('${V/b/[$$]}', { V: 'abc' }), 'a[]c');
  assert.is(processWord('${V/b/\\$0}', { V: 'abc' }), 'a\\bc');
});

test('suffix and prefix trimming with globs', () => {
  const env = { F: 'archive.tar.gz' };
  assert.is(processWord('${F%.*}', env), 'archive.tar');
  assert.is(processWord('${F%%.*}', env), 'archive');
  assert.is(processWord('${F#*.}', env), 'tar.gz');
  assert.is(processWord('${F##*.}', env), 'gz');
});

test('errors are ShellExpansionError naming the word', () => {
  try {
    processWord('${X:?must be set}', {});
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ShellExpansionError);
    assert.is((e as Error).message, 'failed to process "${X:?must be set}": X: must be set');
  }
  assert.throws(() => processWord('${X#\\a}', { X: 'a' }), /invalid escape/);
  assert.throws(() => processWord('${X', {}), /unsupported modifier/);
  assert.throws(() => processWord('${X:-a', {}), /missing '}'/);
});

test('matched/unmatched sets include lookups inside defaults', () => {
  const r = processWordWithMatches('${A:-$B}${C+$D}', { B: 'b' });
  assert.is(r.result, 'b');
  assert.equal([...r.matched].sort(), ['B']);
  assert.equal([...r.unmatched].sort(), ['A', 'C', 'D']);
});

test.run();
