import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bypassProxy, proxySettings } from '../../../src/registry/proxy-dispatcher.js';

test('proxy settings from upper or lower case variables; scheme added when missing', () => {
  assert.is(proxySettings({}), undefined);
  assert.equal(proxySettings({ https_proxy: 'proxy:3128', NO_PROXY: 'a' }), { noProxy: 'a', httpsProxy: 'http://proxy:3128' });
  assert.equal(proxySettings({ HTTP_PROXY: 'http://p:1', http_proxy: 'http://ignored:2' }), { noProxy: '', httpProxy: 'http://p:1' });
});

test('NO_PROXY matching as Go net/http: suffixes, ports, IPs, CIDRs, "*", loopback always', () => {
  const np = 'example.com, .internal, reg.local:5000, 10.0.0.0/8, 192.168.1.7, [::5]';
  assert.ok(bypassProxy('example.com', '443', np));
  assert.ok(bypassProxy('registry.example.com', '443', np));
  assert.not.ok(bypassProxy('notexample.com', '443', np));
  assert.ok(bypassProxy('a.b.internal', '80', np));
  assert.ok(bypassProxy('reg.local', '5000', np));
  assert.not.ok(bypassProxy('reg.local', '443', np));
  assert.ok(bypassProxy('10.1.2.3', '443', np));
  assert.not.ok(bypassProxy('11.1.2.3', '443', np));
  assert.ok(bypassProxy('192.168.1.7', '443', np));
  assert.ok(bypassProxy('[::5]', '443', np));
  assert.ok(bypassProxy('anything', '1', '*'));
  assert.ok(bypassProxy('127.0.0.1', '5000', ''));
  assert.ok(bypassProxy('localhost', '5000', ''));
  assert.not.ok(bypassProxy('registry-1.docker.io', '443', ''));
});

test.run();
