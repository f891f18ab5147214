/**
 * What inspecting the role machine costs a member's Raft core, in one thread with no I/O: a
 * single voter takes proposals (a tick every tenth) with no inspect callback, with the member's
 * callback as --inspect-url installs it (high-rate events left out), and with --inspect-all-events;
 * each inspection event is serialised as the stream would. Printed: CPU microseconds per
 * proposal and inspection events sent, the median over rounds taken in turns.
 *
 *   node dist/bench/inspect-cost.js [--proposals 20000] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import { createMemberInspect } from '../actors/inspect/member-inspect.js';
import { MemoryStorage, RawNode } from '../machines/raw-node.js';
import { median, table } from './compare.js';
import { isMainModule } from './load.js';
import { confStateOf } from '../test/raft/harness.js';

const modes = ['off', 'inspected', 'all-events'] as const;
type Mode = (typeof modes)[number];

/** CPU microseconds per proposal and events sent, for one run of `proposals` proposals. */
function runOnce(mode: Mode, proposals: number): { cpuUsPerProposal: number; sent: number } {
  let sent = 0;
  const adapter = { send: (event: unknown) => void (JSON.stringify(event), (sent += 1)) };
  const inspect = mode === 'off' ? undefined : createMemberInspect('m1/0', adapter, mode === 'all-events');
  const storage = MemoryStorage.withConfState(confStateOf([1n]));
  const node = new RawNode({
    id: 1n,
    storage,
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    maxEntriesPerMessage: 64,
    maxInflightMessages: 256,
    seed: 7,
    ...(inspect === undefined ? {} : { inspect }),
  });
  const drain = () => {
    while (node.hasReady()) {
      const ready = node.ready();
      if (ready.hardState) storage.setHardState(ready.hardState);
      storage.append(ready.entries);
      node.advance(ready);
    }
  };
  for (let tick = 0; tick < 30; tick += 1) node.tick();
  drain();
  const payload = new TextEncoder().encode('value');
  const before = process.cpuUsage();
  for (let n = 0; n < proposals; n += 1) {
    node.propose(payload);
    if (n % 10 === 0) node.tick();
    drain();
  }
  const used = process.cpuUsage(before);
  return { cpuUsPerProposal: (used.user + used.system) / proposals, sent };
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { proposals: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } },
  });
  const proposals = Number(values.proposals);
  const rounds = Number(values.rounds);
  const seen = new Map<Mode, { cpu: number[]; sent: number }>(modes.map((mode) => [mode, { cpu: [], sent: 0 }]));
  for (let round = 0; round < rounds; round += 1) {
    for (const mode of modes) {
      const result = runOnce(mode, proposals);
      const entry = seen.get(mode)!;
      entry.cpu.push(result.cpuUsPerProposal);
      entry.sent = result.sent;
    }
  }
  process.stdout.write(
    `${table(
      [
        ['mode', 'CPU us/proposal', 'events sent'],
        ...modes.map((mode) => [mode, median(seen.get(mode)!.cpu).toFixed(2), String(seen.get(mode)!.sent)]),
      ],
      true,
    )}\n`,
  );
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = main(process.argv.slice(2));
