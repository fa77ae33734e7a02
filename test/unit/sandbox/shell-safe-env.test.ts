import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { envFix, shellSafeEnv } from '../../../src/sandbox/setpriv-helper.js';

test('shell-special and odd names are held away from host shells', () => {
  const { shellEnv, held } = shellSafeEnv({ PATH: '/bin', BASH_ENV: '/x', 'BASH_FUNC_f%%': '() { :; }', 'a.b': '1', SHELLOPTS: 'xtrace', _ok: 'y' });
  assert.equal(shellEnv, { PATH: '/bin', _ok: 'y' });
  assert.equal(held.sort(), ['BASH_ENV', 'BASH_FUNC_f%%', 'SHELLOPTS', 'a.b']);
});

test('envFix unsets what the chain added and restores held values, options first', () => {
  assert.equal(envFix({ PATH: '/bin' }), ['-u', 'PWD', '-u', 'OLDPWD', '-u', 'SHLVL', '-u', '_']);
  assert.equal(envFix({ PWD: '/w', BASH_ENV: '/x' }, ['BASH_ENV']), ['-u', 'OLDPWD', '-u', 'SHLVL', '-u', '_', 'PWD=/w', 'BASH_ENV=/x']);
});

test.run();
