import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DurationError, formatGoDuration, parseGoDuration } from '../../../src/dockerfile/duration.js';

test('parses like Go time.ParseDuration', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['5s', 5e9], ['30s', 30e9], ['1478s', 1478e9], ['-5s', -5e9], ['+5s', 5e9], ['-0', 0], ['0s', 0],
    ['5.6s', 5.6e9], ['5.s', 5e9], ['.5s', 0.5e9], ['1.004s', 1.004e9], ['100.00100s', 100.001e9],
    ['10ns', 10], ['11us', 11e3], ['12µs', 12e3], ['12μs', 12e3], ['13ms', 13e6], ['14s', 14e9], ['15m', 900e9], ['16h', 16 * 3600e9],
    ['3h30m', 12600e9], ['10.5s4m', 250.5e9], ['-2m3.4s', -123.4e9], ['1h2m3s4ms5us6ns', 3723004005006],
  ];
  for (const [input, ns] of cases) assert.is(parseGoDuration(input), ns, input);
});

test('refuses what Go refuses, with its messages', () => {
  const bad: Array<[string, string]> = [
    ['', 'time: invalid duration ""'],
    ['3', 'time: missing unit in duration "3"'],
    ['-', 'time: invalid duration "-"'],
    ['s', 'time: invalid duration "s"'],
    ['.', 'time: invalid duration "."'],
    ['-.', 'time: invalid duration "-."'],
    ['.s', 'time: invalid duration ".s"'],
    ['3x', 'time: unknown unit "x" in duration "3x"'],
    ['1d', 'time: unknown unit "d" in duration "1d"'],
    ['9999999999999999999h', 'time: invalid duration "9999999999999999999h"'],
  ];
  for (const [input, msg] of bad) {
    assert.throws(() => parseGoDuration(input), (e: unknown) => e instanceof DurationError && e.message === msg, input);
  }
});

test('formats common durations', () => {
  assert.is(formatGoDuration(90e9), '1m30s');
  assert.is(formatGoDuration(500e6), '500ms');
  assert.is(formatGoDuration(0), '0s');
  assert.is(formatGoDuration(3600e9), '1h0m0s');
});

test.run();
