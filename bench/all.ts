/**
 * The whole comparison in one command: every topology the performance targets name, real etcd and
 * tsetcd side by side in the same run. First one member each (compare.ts: put, txn-put, ranges,
 * the round trip and the fsync floor), then three members (cluster.ts: etcd 3 processes, tsetcd 3
 * processes, tsetcd single-host), each with medians over --rounds.
 *
 *   node dist/bench/all.js [--duration 3] [--warmup 3] [--rounds 3] [--clients 1,64,256] [--cluster-ops put]
 *     [--client go|node] [--json]
 *
 * --clients and --cluster-ops go to cluster.js (its --clients and --ops).
 *   npx tsetcd-bench all ...
 */
import { parseArgs } from 'node:util';
import { formatClusterReport, parseClusterArgs, runClusterBench, type ClusterReport } from './cluster.js';
import { formatCompareReport, parseCompareArgs, runCompare, type CompareReport } from './compare.js';
import { goLoadAvailable } from './go-client.js';
import { sutCommand } from '../test/support/sut.js';

export interface AllReport {
  readonly oneMember: CompareReport;
  readonly threeMembers: ClusterReport;
}

/** Splits the shared flags into compare.js's and cluster.js's own argument lists. */
export function parseAllArgs(argv: readonly string[]): { compareArgs: string[]; clusterArgs: string[]; json: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      clients: { type: 'string', default: '1,64,256' },
      'cluster-ops': { type: 'string', default: 'put' },
      client: { type: 'string', default: 'node' },
      json: { type: 'boolean', default: false },
    },
  });
  const shared = [
    '--duration',
    values.duration,
    '--warmup',
    values.warmup,
    '--rounds',
    values.rounds,
    '--client',
    values.client,
  ];
  const compareArgs = [...shared];
  const clusterArgs = [...shared, '--clients', values.clients, '--ops', values['cluster-ops']];
  // Both parsers run now, so a bad value fails before anything starts.
  parseCompareArgs(compareArgs);
  parseClusterArgs(clusterArgs);
  return { compareArgs, clusterArgs, json: values.json === true };
}

/** Entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const { compareArgs, clusterArgs, json } = parseAllArgs(argv);
  const sut = sutCommand();
  if (sut.command === undefined) {
    process.stderr.write(`cannot compare: ${sut.skipReason}\n`);
    return 2;
  }
  const clusterOptions = parseClusterArgs(clusterArgs);
  const goLoad = clusterOptions.client === 'go' ? goLoadAvailable() : undefined;
  if (goLoad?.ok === false) {
    process.stderr.write(`cannot compare with --client go: ${goLoad.reason}\n`);
    return 2;
  }
  const oneMember = await runCompare(parseCompareArgs(compareArgs).options, sut.command);
  if (!json) process.stdout.write(`# One member each\n\n${formatCompareReport(oneMember)}\n\n`);
  const threeMembers = await runClusterBench(clusterOptions, sut.command);
  const report: AllReport = { oneMember, threeMembers };
  process.stdout.write(
    json ? `${JSON.stringify(report, null, 2)}\n` : `# Three members\n\n${formatClusterReport(threeMembers)}\n`,
  );
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
    },
  );
}
