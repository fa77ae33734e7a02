import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../../src/errors.js';
import { parseSecretFlag, parseSshFlags } from '../../../src/sandbox/run-mounts.js';

test('--secret forms', () => {
  assert.equal(parseSecretFlag('id=npmrc,src=/home/u/.npmrc'), { id: 'npmrc', src: '/home/u/.npmrc' });
  assert.equal(parseSecretFlag('id=tok,env=GITHUB_TOKEN'), { id: 'tok', env: 'GITHUB_TOKEN' });
  assert.equal(parseSecretFlag('id=tok'), { id: 'tok', env: 'tok' });
  assert.equal(parseSecretFlag('id=tok,type=file'), { id: 'tok', src: 'tok' });
  assert.equal(parseSecretFlag('src=/a/b/key.pem'), { id: 'key.pem', src: '/a/b/key.pem' });
  assert.throws(() => parseSecretFlag('id=x,flavour=y'), (e: Error) => e instanceof UsageError && /unknown key "flavour"/.test(e.message));
  assert.throws(() => parseSecretFlag(''), (e: Error) => e instanceof UsageError);
});

test('--ssh forms', () => {
  assert.equal(parseSshFlags(['default'], { SSH_AUTH_SOCK: '/run/agent.sock' }), { default: '/run/agent.sock' });
  assert.equal(parseSshFlags(['gh=/tmp/gh.sock']), { gh: '/tmp/gh.sock' });
  assert.throws(() => parseSshFlags(['default'], {}), (e: Error) => /SSH_AUTH_SOCK is not set/.test(e.message));
});

test.run();
