/**
 * Which words `etcdctl watch` watches and which it runs per event: the command line (with `--`
 * and ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END) and interactive `watch ...` lines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLineWatchArgs, parseInteractiveWatchArgs, watchErrors, watchSpan } from '../../ctl/watch-args.js';

const noEnv = { key: '', rangeEnd: '' };
const defaults = { prefix: false, rev: 0n, prevKv: false };

describe('etcdctl watch arguments', () => {
  const commandLine = (raw: string[], positional: string[], env = noEnv) =>
    parseCommandLineWatchArgs(['etcdctl', ...raw], positional, env, defaults);

  it('watches the key and range end given', () => {
    assert.deepEqual(commandLine(['watch', 'a', 'b'], ['a', 'b']), {
      ok: true,
      watchArgs: ['a', 'b'],
      execArgs: [],
      options: defaults,
    });
  });

  it('runs the words after -- and keeps them out of the key', () => {
    const parsed = commandLine(['watch', 'a', '--rev', '2', '--', 'echo', 'a'], ['a', 'echo', 'a']);
    assert.deepEqual(parsed, { ok: true, watchArgs: ['a'], execArgs: ['echo', 'a'], options: defaults });
  });

  it('takes the key from ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END', () => {
    const env = { key: 'k', rangeEnd: 'z' };
    assert.deepEqual(commandLine(['watch'], [], env), {
      ok: true,
      watchArgs: ['k', 'z'],
      execArgs: [],
      options: defaults,
    });
    assert.deepEqual(commandLine(['watch', '--', 'echo'], ['echo'], env), {
      ok: true,
      watchArgs: ['k', 'z'],
      execArgs: ['echo'],
      options: defaults,
    });
  });

  it('refuses what etcdctl refuses', () => {
    assert.deepEqual(commandLine(['watch'], []), { ok: false, error: watchErrors.badArgsNum });
    assert.deepEqual(commandLine(['watch', 'a', '--'], ['a']), { ok: false, error: watchErrors.separator });
    assert.deepEqual(commandLine(['watch', 'a'], ['a'], { key: 'k', rangeEnd: '' }), {
      ok: false,
      error: watchErrors.conflictEnv,
    });
    assert.deepEqual(commandLine(['watch', 'a', '--', 'echo'], ['a', 'echo'], { key: 'k', rangeEnd: '' }), {
      ok: false,
      error: watchErrors.conflictEnv,
    });
  });

  it('parses an interactive line with its own flags', () => {
    assert.deepEqual(parseInteractiveWatchArgs(['watch', 'a', '--prefix', '--rev', '3', '--', 'echo', 'x'], noEnv), {
      ok: true,
      watchArgs: ['a'],
      execArgs: ['echo', 'x'],
      options: { prefix: true, rev: 3n, prevKv: false },
    });
    assert.deepEqual(parseInteractiveWatchArgs(['get', 'a'], noEnv), {
      ok: false,
      error: watchErrors.interactiveWatch,
    });
    assert.deepEqual(parseInteractiveWatchArgs(['watch', 'a', '--'], noEnv), {
      ok: false,
      error: watchErrors.separator,
    });
    assert.deepEqual(parseInteractiveWatchArgs(['watch', '--x'], noEnv), { ok: false, error: 'unknown flag: --x' });
  });

  it('turns --prefix into the prefix range, and an empty prefix into every key', () => {
    const prefix = { ...defaults, prefix: true };
    assert.deepEqual(watchSpan(['ab'], prefix), { ok: true, key: Buffer.from('ab'), rangeEnd: Buffer.from('ac') });
    assert.deepEqual(watchSpan([''], prefix), { ok: true, key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
    assert.deepEqual(watchSpan(['a', 'b'], prefix), { ok: false, error: watchErrors.prefixAndRangeEnd });
  });
});
