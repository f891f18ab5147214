/**
 * The load generators' security flags: --cacert, --cert and --key (TLS with a client certificate),
 * --user, and --op authenticate, as tsetcd-bench parses them and as the Go tool is handed them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goLoadArgs } from '../../bench/go-client.js';
import { loadOptions, parseLoadArgs } from '../../bench/load.js';

const tlsFlags = ['--cacert', 'ca.crt', '--cert', 'bench.crt', '--key', 'bench.key'];

test('--cacert, --cert and --key make the connections TLS, and go together', () => {
  assert.equal(parseLoadArgs([]).options.tls, undefined);
  assert.deepEqual(parseLoadArgs(tlsFlags).options.tls, {
    trustedCaFile: 'ca.crt',
    certFile: 'bench.crt',
    keyFile: 'bench.key',
  });
  assert.throws(() => parseLoadArgs(['--cacert', 'ca.crt']), /--cacert, --cert and --key go together/);
  assert.throws(() => parseLoadArgs(['--cert', 'b.crt', '--key', 'b.key']), /--cacert, --cert and --key go together/);
});

test('--op authenticate needs a user to log in as', () => {
  assert.equal(parseLoadArgs(['--op', 'authenticate', '--user', 'bench:pw']).options.op, 'authenticate');
  assert.throws(() => parseLoadArgs(['--op', 'authenticate']), /--op authenticate needs --user name:password/);
  assert.throws(
    () => parseLoadArgs(['--op', 'authenticate', '--user', 'bench']),
    /--op authenticate needs --user name:password, saw "bench"/,
  );
});

test('the Go tool is handed the user and the TLS files', () => {
  const plain = goLoadArgs(loadOptions({ endpoints: ['127.0.0.1:2379'] }));
  assert.ok(!plain.includes('--user') && !plain.includes('--cacert'), `expected neither flag, saw ${plain.join(' ')}`);
  const args = goLoadArgs(parseLoadArgs([...tlsFlags, '--user', 'bench:pw', '--op', 'authenticate']).options);
  const after = (flag: string) => args[args.indexOf(flag) + 1];
  assert.deepEqual(['--user', '--cacert', '--cert', '--key', '--op'].map(after), [
    'bench:pw',
    'ca.crt',
    'bench.crt',
    'bench.key',
    'authenticate',
  ]);
});
