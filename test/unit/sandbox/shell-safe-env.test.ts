import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { envFix, splitHostEnv } from '../../../src/sandbox/setpriv-helper.js';

test('shell-special and odd names are held away from host shells', () => {
  const { shellEnv, held } = splitHostEnv({ PATH: '/bin', BASH_ENV: '/x', 'BASH_FUNC_f%%': '() { :; }', 'a.b': '1', SHELLOPTS: 'xtrace', _ok: 'y', LD_PRELOAD: '/x.so', GCONV_PATH: '/g' });
  assert.equal(shellEnv, { PATH: '/bin', _ok: 'y' });
  assert.equal(held.sort(), ['BASH_ENV', 'BASH_FUNC_f%%', 'GCONV_PATH', 'LD_PRELOAD', 'SHELLOPTS', 'a.b']);
});

test('envFix unsets what the chain added and restores held values, options first', () => {
  assert.equal(envFix({ PATH: '/bin' }), ['-u', 'PWD', '-u', 'OLDPWD', '-u', 'SHLVL', '-u', '_']);
  assert.equal(envFix({ PWD: '/w', BASH_ENV: '/x' }, ['BASH_ENV']), ['-u', 'OLDPWD', '-u', 'SHLVL', '-u', '_', 'PWD=/w', 'BASH_ENV=/x']);
});

test.run();
