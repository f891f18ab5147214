/**
 * tsetcdctl's completion scripts, used as a shell uses them: bash sources the script and calls its
 * completion function with COMP_WORDS and COMP_CWORD set, and what it offers for each command path
 * must be the subcommands and flags real etcdctl's help lists for that path; zsh must parse its
 * script and register it. Exit codes and usage errors are compared with etcdctl's in
 * test/ctl/cases.ts.
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

/** What bash's completion function offers for each command line (the last word is the one being completed). */
function complete(scriptPath: string, program: string, lines: readonly (readonly string[])[]): string[][] {
  const calls = lines.map((words) => {
    const all = [program, ...words];
    return `COMP_WORDS=(${all.map(shellWord).join(' ')}); COMP_CWORD=${all.length - 1}; COMPREPLY=(); ${completer(program)}; echo "\${COMPREPLY[*]}"`;
  });
  const ran = spawnSync(
    'bash',
    ['--norc', '--noprofile', '-c', `source ${shellWord(scriptPath)}\n${calls.join('\n')}`],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(ran.status, 0, `bash failed: ${ran.stderr}`);
  assert.equal(ran.stderr, '');
  return ran.stdout
    .split('\n')
    .slice(0, lines.length)
    .map((line) =>
      line
        .split(' ')
        .filter((word) => word !== '')
        .sort(),
    );
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

/** The flags (long forms) a help text lists, global options included. */
function helpFlags(help: string): string[] {
  const options = `${helpSection(help, 'OPTIONS')}\n${helpSection(help, 'GLOBAL OPTIONS')}`;
  return [...new Set([...options.matchAll(/--([a-z0-9-]+)/g)].map((match) => `--${match[1]}`))];
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

  it("offers, for the root and every command with subcommands, exactly etcdctl's subcommands and flags", async () => {
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
    const expected = await Promise.all(
      paths.map(async (path) => {
        const children = commandPaths
          .filter((other) => other.length > path.length && path.every((word, index) => other[index] === word))
          .map((other) => other[path.length]!);
        return [...new Set(children), ...helpFlags(await etcdctlHelp(path))].sort();
      }),
    );
    const offered = complete(
      bashPath,
      'tsetcdctl',
      paths.map((path) => [...path, '']),
    );
    paths.forEach((path, index) =>
      assert.deepEqual(offered[index], expected[index], `completions after "tsetcdctl ${path.join(' ')}"`),
    );
  });

  it('completes prefixes, and steps over keys and flag values, however they are written', () => {
    const cases: Array<[words: string[], expected: string[]]> = [
      [['ch'], ['check']],
      [['check', 'p'], ['perf']],
      [
        ['check', 'perf', '--auto-'],
        ['--auto-compact', '--auto-defrag'],
      ],
      [
        ['get', 'mykey', '--pr'],
        ['--prefix', '--print-value-only'],
      ],
      [['--endpoints', '127.0.0.1:2379', 'lease', 'ke'], ['keep-alive']],
      [['-w', 'json', 'member', 'l'], ['list']],
      // bash splits --write-out=json into three words.
      [
        ['--write-out', '=', 'json', 'snapshot', 's'],
        ['save', 'status'],
      ],
      [['--hex', 'user', 'gr'], ['grant-role']],
      // A flag's value that happens to be a command name is still the value.
      [['--user', 'get', 'put', '--le'], ['--lease']],
      [['--user=get', 'put', '--le'], ['--lease']],
    ];
    const offered = complete(
      bashPath,
      'etcdctl',
      cases.map(([words]) => words),
    );
    cases.forEach(([words, expected], index) =>
      assert.deepEqual(offered[index], expected, `completions for "etcdctl ${words.join(' ')}"`),
    );
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
