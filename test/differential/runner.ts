/** Runs a differential script against one member and normalises what etcdctl printed. */
import { runEtcdctl } from '../support/etcdctl.js';
import { splitWords, substitute, type Script, type ScriptStep } from './script.js';

/** What one step printed, after normalisation. */
export interface StepOutcome {
  readonly step: ScriptStep;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

const leaseGrantedPattern = /lease ([0-9a-f]+) granted with TTL/;

/** Runs every step in order against `endpoint`; later steps may use leases granted by earlier ones. */
export async function runScript(endpoint: string, script: Script): Promise<StepOutcome[]> {
  const variables = new Map<string, string>();
  const leaseIdsHex: string[] = [];
  const outcomes: StepOutcome[] = [];
  for (const step of script.steps) {
    const args = splitWords(substitute(step.text, variables));
    const stdin = step.stdin === undefined ? undefined : substitute(step.stdin, variables);
    const result = await runEtcdctl(endpoint, args, stdin === undefined ? {} : { stdin });
    const granted = leaseGrantedPattern.exec(result.stdout);
    if (granted?.[1] !== undefined) {
      leaseIdsHex.push(granted[1]);
      variables.set(`LEASE${leaseIdsHex.length}`, granted[1]);
    }
    outcomes.push({
      step,
      stdout: normalise(result.stdout, leaseIdsHex),
      stderr: normalise(result.stderr, leaseIdsHex),
      code: result.code,
    });
  }
  return outcomes;
}

/**
 * Hides what legitimately differs between two members: cluster and member ids, raft terms,
 * lease ids (hex and decimal), log timestamps and endpoints. Revisions are kept: they must match.
 */
export function normalise(text: string, leaseIdsHex: readonly string[]): string {
  let result = text
    .replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":<$1>')
    .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <$1>')
    .replace(/"ts":"[^"]*"/g, '"ts":<ts>')
    // etcdctl's retry warning names a random client id and the member's port.
    .replace(/"target":"[^"]*"/g, '"target":<target>')
    // A lease's remaining TTL depends on when the command ran: seconds are compared in tens
    // read the same, so a wrong TTL (e.g. the granted one on a timing leader) still differs.
    .replace(/remaining\((\d+)s\)/g, (_match, seconds: string) => `remaining(~${Math.round(Number(seconds) / 10)}s)`)
    .replace(/"TTL":(\d+)/g, (_match, seconds: string) => `"TTL":~${Math.round(Number(seconds) / 10)}`);
  leaseIdsHex.forEach((hex, index) => {
    const label = `<lease${index + 1}>`;
    const decimal = BigInt(`0x${hex}`).toString(10);
    const bareHex = hex.replace(/^0+/, '');
    result = result.replace(new RegExp(`\\b0*${bareHex}\\b`, 'gi'), label).replace(new RegExp(`\\b${decimal}\\b`, 'g'), label);
  });
  return result;
}

/** The printable form of a step's outcome, the unit that is compared and diffed. */
export function describeOutcome(outcome: StepOutcome): string {
  return [`exit code: ${String(outcome.code)}`, '--- stdout', outcome.stdout.trimEnd(), '--- stderr', outcome.stderr.trimEnd()].join('\n');
}

/** A line diff (longest common subsequence): ' ' same, '-' only expected, '+' only actual. */
export function lineDiff(expected: string, actual: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const common: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i -= 1) {
    for (let j = b.length - 1; j >= 0; j -= 1) {
      const row = common[i] as number[];
      row[j] = a[i] === b[j] ? (common[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(common[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push(`  ${a[i]}`);
      i += 1;
      j += 1;
    } else if (i < a.length && (j >= b.length || (common[i + 1]?.[j] ?? 0) >= (common[i]?.[j + 1] ?? 0))) {
      lines.push(`- ${a[i]}`);
      i += 1;
    } else {
      lines.push(`+ ${b[j]}`);
      j += 1;
    }
  }
  return lines.join('\n');
}
