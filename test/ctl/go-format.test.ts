/** Go formatting rules tsetcdctl reproduces, checked against values etcdctl was seen to print. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goParseDuration, goParseInt, goParseUint16, goQuote, goUnquote, humanizeBytes } from '../../ctl/go-format.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import { tabwrite } from '../../ctl/usage.js';

test('goQuote escapes like Go %q, keeping printable Unicode and spelling out invalid bytes', () => {
  assert.equal(goQuote(Buffer.from('a"b\\c\n\t\x01é')), '"a\\"b\\\\c\\n\\t\\x01é"');
  assert.equal(goQuote(Buffer.from([0xff, 0x41])), '"\\xffA"');
});

test('goUnquote reads Go escapes, with \\x as a raw byte', () => {
  assert.deepEqual(goUnquote('"a\\x00\\u00e9\\n"'), Buffer.from([0x61, 0x00, 0xc3, 0xa9, 0x0a]));
  assert.equal(goUnquote('"unterminated\\"'), undefined);
});

test('goParseInt matches strconv.ParseInt errors and bases', () => {
  assert.deepEqual(goParseInt('0x10', 0), { ok: true, value: 16n });
  assert.deepEqual(goParseInt('ff', 16), { ok: true, value: 255n });
  assert.deepEqual(goParseInt('zz', 16), { ok: false, error: 'strconv.ParseInt: parsing "zz": invalid syntax' });
  assert.deepEqual(goParseInt('9223372036854775808', 10), {
    ok: false,
    error: 'strconv.ParseInt: parsing "9223372036854775808": value out of range',
  });
});

test('goParseUint16 reads member IDs as strconv.ParseUint(s, 16, 64) does', () => {
  assert.deepEqual(goParseUint16('ffffffffffffffff'), { ok: true, value: (1n << 64n) - 1n });
  assert.deepEqual(goParseUint16('zz'), { ok: false, error: 'strconv.ParseUint: parsing "zz": invalid syntax' });
  assert.deepEqual(goParseUint16('+1'), { ok: false, error: 'strconv.ParseUint: parsing "+1": invalid syntax' });
  assert.deepEqual(goParseUint16('10000000000000000'), {
    ok: false,
    error: 'strconv.ParseUint: parsing "10000000000000000": value out of range',
  });
});

test('durations parse and print as Go time.Duration does', () => {
  assert.deepEqual(goParseDuration('1m30s'), { ok: true, value: 90e9 });
  assert.deepEqual(goParseDuration('x'), { ok: false, error: 'time: invalid duration "x"' });
  assert.equal(goDurationString(2_817_438), '2.817438ms');
  assert.equal(goDurationString(1_500), '1.5µs');
  assert.equal(goDurationString(61e9), '1m1s');
});

test('humanizeBytes rounds like go-humanize', () => {
  assert.equal(humanizeBytes(12_623_872), '13 MB');
  assert.equal(humanizeBytes(20_480), '20 kB');
  assert.equal(humanizeBytes(1_500), '1.5 kB');
  assert.equal(humanizeBytes(5), '5 B');
});

test('tabwrite pads cells with tabs to multiples of eight like Go text/tabwriter', () => {
  assert.equal(tabwrite('a\tx\nlonger-cell\ty\n\nz\n'), 'a\t\tx\nlonger-cell\ty\n\nz\n');
});
