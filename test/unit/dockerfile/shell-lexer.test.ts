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

test('absurdly deep ${} nesting is refused with an expansion error, not a stack overflow', () => {
  assert.is(processWord('${a:-'.repeat(1000) + 'x' + '}'.repeat(1000), {}), 'x');
  assert.throws(() => processWord('${a:-'.repeat(50000), {}), (e: unknown) => e instanceof ShellExpansionError && /nested more than 1000/.test((e as Error).message));
});

test('matched/unmatched sets include lookups inside defaults', () => {
  const r = processWordWithMatches('${A:-$B}${C+$D}', { B: 'b' });
  assert.is(r.result, 'b');
  assert.equal([...r.matched].sort(), ['B']);
  assert.equal([...r.unmatched].sort(), ['A', 'C', 'D']);
});


// Differential check: the linear glob matcher picks the same extents as a backtracking regexp
// engine (what BuildKit uses: Go regexp, leftmost-first) on random small globs and values.
test('glob extents equal leftmost-first regexp extents (random, seed 20261123)', () => {
  let seed = 20261123;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ['a', 'b', '/', '*', '?'];
  const toRegex = (glob: string, greedy: boolean) =>
    glob.replace(/\\\\|\\\*|\\\?|[*?]|[^*?\\]/g, (t) => (t === '*' ? (greedy ? '[^\\n]*' : '[^\\n]*?') : t === '?' ? '[^\\n]' : t.length === 2 ? t : t.replace(/[/.*+?^${}()|[\]\\]/g, '\\$&')));
  for (let n = 0; n < 3000; n++) {
    const glob = Array.from({ length: 1 + rnd(5) }, () => alphabet[rnd(alphabet.length)]).join('');
    const value = Array.from({ length: rnd(8) }, () => 'ab/x'[rnd(4)]).join('');
    const env = { V: value, P: glob };
    for (const [op, greedy] of [['#', false], ['##', true], ['%', false], ['%%', true]] as const) {
      const got = processWord(`\${V${op}$P}`, env);
      let want = value;
      if (op.startsWith('#')) {
        const m = new RegExp('^' + toRegex(glob, greedy)).exec(value);
        if (m) want = value.slice(m[0].length);
      } else {
        const rev = [...glob].reverse().join('');
        const m = new RegExp('^' + toRegex(rev, greedy)).exec([...value].reverse().join(''));
        if (m) want = value.slice(0, value.length - m[0].length);
      }
      assert.is(got, want, `\${V${op}P} V=${value} P=${glob}`);
    }
    const re = new RegExp(toRegex(glob, true));
    const m = re.exec(value);
    const first = m ? value.slice(0, m.index) + 'R' + value.slice(m.index + m[0].length) : value;
    assert.is(processWord('${V/$P/R}', env), first, `\${V/P/R} V=${value} P=${glob}`);
  }
});

test.run();
