/**
 * tsetcdctl's completion scripts, used as a shell uses them: bash sources the script and calls its
 * completion function with COMP_WORDS and COMP_CWORD set. What it offers must be what etcdctl's
 * own `completion bash` script offers for the same words, run the same way in another bash (that
 * script asks `etcdctl __complete`): subcommands, flags, partial words, flag values and words
 * after `--`, for every command path etcdctl's help lists. zsh must parse its script and
 * register it. Exit codes and usage errors are compared with etcdctl's in test/ctl/cases.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../support/etcdctl.js';
import { etcdctlBinaryPath, tsetcdctlBinPath } from '../support/sut.js';

const zshMissing = spawnSync('zsh', ['--version']).error !== undefined;
if (zshMissing) console.log('# skipped: zsh is not installed');

/** Quotes one word for bash. */
function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A bound on one bash run of many completions, not a measure of speed: with etcdctl's script the
 * longest list took over a minute on a loaded machine.
 */
const completionRunMsMax = 300_000;

/** Runs one bash that sources `prelude` and prints COMPREPLY, sorted, after each call. */
function completionsIn(prelude: string, calls: readonly string[], env: NodeJS.ProcessEnv = process.env): string[][] {
  const ran = spawnSync('bash', ['--norc', '--noprofile', '-c', `${prelude}\n${calls.join('\n')}`], {
    encoding: 'utf8',
    timeout: completionRunMsMax,
    env,
  });
  assert.equal(ran.signal, null, `bash was killed (${ran.signal}) after ${completionRunMsMax} ms or on a signal`);
  assert.equal(ran.status, 0, `bash failed: ${ran.stderr}`);
  assert.equal(ran.stderr, '');
  return ran.stdout
    .split('\n')
    .slice(0, calls.length)
    .map((line) =>
      line
        .split(' ')
        .filter((word) => word !== '')
        .sort(),
    );
}

/** The assignments a completion function reads: the words, the cursor's word, and a menu completion. */
function completionWords(all: readonly string[]): string {
  const line = all.join(' ');
  // COMP_TYPE 37 (menu completion) makes cobra's script offer bare words, without descriptions.
  return `COMP_WORDS=(${all.map(shellWord).join(' ')}); COMP_CWORD=${all.length - 1}; COMP_TYPE=37; COMP_LINE=${shellWord(line)}; COMP_POINT=${line.length}; COMPREPLY=()`;
}

/** What bash's completion function offers for each command line (the last word is the one being completed). */
function complete(scriptPath: string, program: string, lines: readonly (readonly string[])[]): string[][] {
  const calls = lines.map(
    (words) => `${completionWords([program, ...words])}; ${completer(program)}; echo "\${COMPREPLY[*]}"`,
  );
  return completionsIn(`source ${shellWord(scriptPath)}`, calls);
}

/**
 * What etcdctl's own bash script offers for the same lines. It wants bash-completion's
 * _get_comp_words_by_ref, which joins what bash split at '=' (`--write-out = json`); a minimal one
 * stands in for it here, given the joined words, and compopt, which only works inside a real
 * completion, does nothing.
 */
function completeAsEtcdctl(scriptPath: string, lines: readonly (readonly string[])[]): string[][] {
  const calls = lines.map((words) => {
    const joined = words.join(' ').replace(/ = ?/g, '=').split(' ');
    return `${completionWords([etcdctlBinaryPath, ...joined])}; __start_etcdctl; echo "\${COMPREPLY[*]}"`;
  });
  const prelude = [
    '_get_comp_words_by_ref() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; }',
    'compopt() { :; }',
    `source ${shellWord(scriptPath)}`,
  ].join('\n');
  return completionsIn(prelude, calls, { ...process.env, ETCDCTL_API: '3' });
}

/** The function `complete -p <program>` names for the program: the script must register itself. */
let registered = new Map<string, string>();
function completer(program: string): string {
  const name = registered.get(program);
  assert.ok(name !== undefined, `expected the script to register a completion for ${program}`);
  return name;
}

/** A help text's section (COMMANDS, OPTIONS, ...), empty when it has none. */
function helpSection(help: string, title: string): string {
  const start = help.indexOf(`\n${title}:\n`);
  if (start === -1) return '';
  const rest = help.slice(start + title.length + 3);
  const end = rest.search(/\n[A-Z ]+:\n/);
  return end === -1 ? rest : rest.slice(0, end);
}

async function etcdctlHelp(path: readonly string[]): Promise<string> {
  const result = await runCommand(etcdctlBinaryPath, [...path, '--help'], { env: { ETCDCTL_API: '3' } });
  assert.equal(result.code, 0, `etcdctl ${path.join(' ')} --help: ${result.stderr}`);
  return result.stdout;
}

describe('tsetcdctl completion bash and zsh complete what etcdctl has', () => {
  let dir = '';
  let bashPath = '';
  let zshPath = '';
  let etcdctlBashPath = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-completion-'));
    bashPath = join(dir, 'tsetcdctl.bash');
    zshPath = join(dir, '_tsetcdctl');
    for (const [shell, path] of [
      ['bash', bashPath],
      ['zsh', zshPath],
    ] as const) {
      const result = await runCommand(process.execPath, [tsetcdctlBinPath, 'completion', shell]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      await writeFile(path, result.stdout);
    }
    etcdctlBashPath = join(dir, 'etcdctl.bash');
    const reference = await runCommand(etcdctlBinaryPath, ['completion', 'bash'], { env: { ETCDCTL_API: '3' } });
    assert.equal(reference.code, 0, reference.stderr);
    await writeFile(etcdctlBashPath, reference.stdout);
    const listed = spawnSync(
      'bash',
      ['--norc', '--noprofile', '-c', `source ${shellWord(bashPath)}; complete -p tsetcdctl etcdctl`],
      { encoding: 'utf8', timeout: 30_000 },
    );
    registered = new Map(
      [...listed.stdout.matchAll(/^complete .*-F (\S+) (\S+)$/gm)].map((match) => [match[2]!, match[1]!]),
    );
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('registers one function for both tsetcdctl and etcdctl', () => {
    assert.equal(completer('tsetcdctl'), completer('etcdctl'));
  });

  /** Each line completed by both scripts: ours must offer what etcdctl's offers. */
  function assertSameAsEtcdctl(lines: readonly (readonly string[])[]): void {
    const expected = completeAsEtcdctl(etcdctlBashPath, lines);
    const offered = complete(bashPath, 'etcdctl', lines);
    lines.forEach((words, index) =>
      assert.deepEqual(offered[index], expected[index], `completions for "etcdctl ${words.join(' ')}"`),
    );
  }

  it("offers, after the root and every command, etcdctl's subcommands, and for '-' and '--' its flags", async () => {
    // The root's help lists every command by its whole path ("lease grant").
    const rootHelp = await etcdctlHelp([]);
    const commandPaths = [...helpSection(rootHelp, 'COMMANDS').matchAll(/^\t([^\t]+)\t/gm)].map((match) =>
      match[1]!.split(' '),
    );
    const pathKeys = new Set([
      '',
      ...commandPaths.flatMap((path) => path.map((_, end) => path.slice(0, end + 1).join(' '))),
    ]);
    const paths = [...pathKeys].map((key) => (key === '' ? [] : key.split(' ')));
    assert.ok(paths.length > 40, `expected etcdctl's help to list its commands, saw ${paths.length} paths`);
    assertSameAsEtcdctl(
      paths.flatMap((path) => [
        [...path, ''],
        [...path, '-'],
        [...path, '--'],
      ]),
    );
  });

  it('completes prefixes, flag values, given flags, help and words after -- as etcdctl does', () => {
    assertSameAsEtcdctl([
      ['ch'],
      ['check', 'p'],
      ['check', 'perf', '--auto-'],
      ['get', 'mykey', '--pr'],
      ['get', 'mykey', ''],
      ['--endpoints', '127.0.0.1:2379', 'lease', 'ke'],
      ['-w', 'json', 'member', 'l'],
      // bash splits --write-out=json into three words.
      ['--write-out', '=', 'json', 'snapshot', 's'],
      ['--hex', 'user', 'gr'],
      // A flag's value that happens to be a command name is still the value.
      ['--user', 'get', 'put', '--le'],
      ['--user=get', 'put', '--le'],
      // A flag's value is not completed.
      ['-w', ''],
      ['get', '--consistency', ''],
      // A flag given once is not offered again, unless it is a list (--endpoints).
      ['get', '--prefix', '--p'],
      ['-w', 'json', 'get', '-'],
      ['--endpoints', 'a', 'get', '--e'],
      // check perf's --prefix takes a value, get's does not.
      ['check', 'perf', '--prefix', 'x', '--p'],
      ['help', ''],
      ['help', 'lease', ''],
      ['help', '-'],
      // After --, no flags; the root's subcommands still, no arguments' words.
      ['--', ''],
      ['watch', 'k', '--', '--'],
      ['lock', 'L', '--', ''],
      ['completion', ''],
    ]);
  });

  it('gives zsh a script it parses and registers for both names', { skip: zshMissing }, () => {
    const parsed = spawnSync('zsh', ['-n', zshPath], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(parsed.status, 0, parsed.stderr);
    const loaded = spawnSync(
      'zsh',
      ['-f', '-c', `source ${shellWord(zshPath)}; print -r -- "$_comps[tsetcdctl]|$_comps[etcdctl]"`],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: dir } },
    );
    assert.equal(loaded.status, 0, loaded.stderr);
    const [forTsetcdctl, forEtcdctl] = loaded.stdout.trim().split('|');
    assert.match(forTsetcdctl ?? '', /_tsetcdctl_complete/);
    assert.equal(forEtcdctl, forTsetcdctl);
  });
});
