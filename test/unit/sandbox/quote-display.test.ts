import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { quoteDisplay } from '../../../src/sandbox/spawn-sandbox.js';

test('the command is quoted as BuildKit prints it (Go %q)', () => {
  assert.is(quoteDisplay('/bin/sh -c make'), '"/bin/sh -c make"');
  assert.is(quoteDisplay('/bin/sh -c echo "hi"'), '"/bin/sh -c echo \\"hi\\""');
});

test('an already quoted display is not quoted twice', () => {
  assert.is(quoteDisplay('"/bin/sh -c make"'), '"/bin/sh -c make"');
  assert.is(quoteDisplay('"a" && "b"'), '"\\"a\\" \\u0026\\u0026 \\"b\\""'.replace(/\\u0026/g, '&'));
});

test.run();
