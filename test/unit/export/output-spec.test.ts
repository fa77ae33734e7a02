import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseOutputSpec } from '../../../src/export/output-spec.js';
import { shortDockerName } from '../../../src/export/archive.js';

test('buildx -o forms', () => {
  assert.equal(parseOutputSpec('type=oci,dest=out.tar'), { type: 'oci', dest: 'out.tar', names: [] });
  assert.equal(parseOutputSpec('type=docker,dest=d.tar,name=a:1'), { type: 'docker', dest: 'd.tar', names: ['a:1'] });
  assert.equal(parseOutputSpec('type=image,name=r/x:1,push=true'), { type: 'image', names: ['r/x:1'], push: true });
  assert.equal(parseOutputSpec('type=registry,name=r/x'), { type: 'image', names: ['r/x'], push: true });
  assert.equal(parseOutputSpec('type=local,dest=dir'), { type: 'local', dest: 'dir' });
  assert.equal(parseOutputSpec('some/dir'), { type: 'local', dest: 'some/dir' });
  assert.equal(parseOutputSpec('-'), { type: 'tar', dest: '-' });
});

test('unknown types and attributes are refused, never ignored', () => {
  assert.throws(() => parseOutputSpec('type=nope,dest=x'), /Unknown output type "nope"/);
  assert.throws(() => parseOutputSpec('type=oci,dest=x,compression=zstd'), /Unsupported output attribute "compression"/);
  assert.throws(() => parseOutputSpec('type=local'), /needs dest=/);
  assert.throws(() => parseOutputSpec('type=image,push=maybe'), /expected true or false/);
});

test('docker archive RepoTags use familiar names', () => {
  assert.is(shortDockerName('docker.io/library/alpine:3'), 'alpine:3');
  assert.is(shortDockerName('docker.io/me/app:1'), 'me/app:1');
  assert.is(shortDockerName('127.0.0.1:5000/app:1'), '127.0.0.1:5000/app:1');
});

test.run();
