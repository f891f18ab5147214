/**
 * The differential script language: one etcdctl command line per line, run in order.
 *
 *   # comment                 ignored, as are blank lines
 *   @flags --max-txn-ops 4    member start flags (both sides start with the same ones)
 *   @gate TSETCD_AUTH_TESTS   the script runs only when that environment variable is 1 (for a
 *                             feature tsetcd does not have yet); otherwise its test is skipped
 *   put a 1 --prev-kv         etcdctl arguments, shell-style quoting ('..' and "..")
 *   txn <<END                 the following lines up to END are fed to etcdctl on stdin;
 *                             etcdctl needs each of its three sections ended by an empty line
 *   lease grant 600           each granted lease id is captured as $LEASE1, $LEASE2, ...
 *   put k {{x*5000}}          expands to 5000 copies of "x"
 *   &w1 watch a --rev 2       starts etcdctl in the background as "w1" (for watch, elect, lock);
 *                             it prints nothing until stopped
 *   @sleep 500                waits 500 ms (e.g. for a lease to expire)
 *   @wait w1 1                waits until w1 printed at least 1 line (bounded), e.g. a lock
 *                             holder its key, so what follows sees the lock held
 *   @stop w1 4                waits until w1 printed at least 4 lines (bounded), interrupts it and
 *                             reports everything it printed and its exit code as this step's outcome
 */

/** One command of a script, as written. */
export interface ScriptStep {
  /** 1-based line number in the script file, for failure messages. */
  readonly line: number;
  /** The command line as written, before substitution. */
  readonly text: string;
  /** Text fed to stdin (a heredoc body), before substitution. */
  readonly stdin?: string;
  /** Set for `&name command`: the command runs in the background under this name. */
  readonly background?: string;
}

export interface Script {
  readonly flags: readonly string[];
  /** Environment variables that must be 1 for the script to run (from `@gate`). */
  readonly gates: readonly string[];
  readonly steps: readonly ScriptStep[];
}

/** Commands per script are bounded so a runaway script cannot stall the suite. */
export const scriptStepsMax = 1_000;

const heredocPattern = /^(.*?)\s*<<\s*([A-Z]+)$/;
const backgroundPattern = /^&([a-z][a-z0-9]*)\s+(.+)$/;

/** Parses a script file's text. */
export function parseScript(text: string): Script {
  const lines = text.split('\n');
  const flags: string[] = [];
  const gates: string[] = [];
  const steps: ScriptStep[] = [];
  for (let index = 0; index < lines.length; index += 1) {
    const raw = (lines[index] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    if (raw.startsWith('@flags ')) {
      flags.push(...splitWords(raw.slice('@flags '.length)));
      continue;
    }
    if (raw.startsWith('@gate ')) {
      gates.push(...splitWords(raw.slice('@gate '.length)));
      continue;
    }
    const background = backgroundPattern.exec(raw);
    if (background !== null) {
      const [, name = '', command = ''] = background;
      steps.push({ line: index + 1, text: command, background: name });
      continue;
    }
    const heredoc = heredocPattern.exec(raw);
    if (heredoc === null) {
      steps.push({ line: index + 1, text: raw });
      continue;
    }
    const [, command = '', terminator = ''] = heredoc;
    const body: string[] = [];
    const startLine = index + 1;
    for (index += 1; index < lines.length && (lines[index] ?? '').trim() !== terminator; index += 1)
      body.push(lines[index] ?? '');
    if (index >= lines.length) throw new Error(`line ${startLine}: heredoc ${terminator} is never closed`);
    steps.push({ line: startLine, text: command, stdin: body.join('\n') + '\n' });
  }
  if (steps.length > scriptStepsMax) throw new Error(`expected at most ${scriptStepsMax} steps, saw ${steps.length}`);
  return { flags, gates, steps };
}

/** Why a script does not run in this environment, or undefined when every gate is open. */
export function gateSkipReason(script: Script, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const closed = script.gates.filter((name) => env[name] !== '1');
  return closed.length === 0 ? undefined : `set ${closed.map((name) => `${name}=1`).join(' ')} to run this script`;
}

/** Replaces $NAME variables and {{c*N}} repetitions. */
export function substitute(text: string, variables: ReadonlyMap<string, string>): string {
  const replaced = text.replace(/\$([A-Z][A-Z0-9_]*)/g, (whole, name: string) => {
    const value = variables.get(name);
    if (value === undefined) throw new Error(`variable $${name} is not defined yet`);
    return value;
  });
  return replaced.replace(/\{\{(.)\*(\d+)\}\}/g, (_whole, unit: string, count: string) => unit.repeat(Number(count)));
}

/** Splits a command line into words with shell-style single and double quotes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i] ?? '';
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) current += line[++i] ?? '';
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new Error(`unterminated ${quote} quote in: ${line}`);
  if (inWord) words.push(current);
  return words;
}
