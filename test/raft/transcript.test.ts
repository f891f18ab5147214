/**
 * Transcript tests in the style of etcd raft's interaction tests: each file under
 * test/raft/testdata holds commands and their expected output. Set RAFT_REWRITE=1 to regenerate
 * the expected output after a deliberate behaviour change (then review the diff).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/lib/paths.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { type Message, type Ready, messageTypeNames } from '../../src/raft/types.js';
import { Cluster, type MemberOptions, decode, text } from './harness.js';

const testdataDir = join(packageRoot(), 'test', 'raft', 'testdata');
const rewrite = process.env.RAFT_REWRITE === '1';

interface Case {
  command: string;
  expected: string;
}

function parse(source: string): Case[] {
  const cases: Case[] = [];
  const blocks = source.split(/\n\n(?=\S)/);
  for (const block of blocks) {
    const [command, ...rest] = block.replace(/\n+$/, '').split('\n');
    if (!command || command.startsWith('#')) continue;
    assert.equal(rest[0], '----', `expected '----' after command '${command}'`);
    cases.push({ command, expected: rest.slice(1).join('\n') });
  }
  return cases;
}

export function formatMessage(m: Message): string {
  const entries = m.entries.map((e) => `${e.term}/${e.index}${e.data.length > 0 ? ` ${decode(e.data)}` : ''}`);
  const parts = [`${m.from}->${m.to} ${messageTypeNames[m.type] ?? m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`];
  if (m.commit > 0) parts.push(`Commit:${m.commit}`);
  if (m.reject) parts.push(`Rejected (Hint: ${m.rejectHint})`);
  if (entries.length > 0) parts.push(`Entries:[${entries.join(', ')}]`);
  if (m.snapshot) parts.push(`Snapshot:${m.snapshot.metadata.term}/${m.snapshot.metadata.index}`);
  return parts.join(' ');
}

function formatReady(id: bigint, ready: Ready): string[] {
  const lines = [`> ${id} handling Ready`];
  if (ready.softState) lines.push(`  Lead:${ready.softState.leaderId} State:${ready.softState.role}`);
  if (ready.hardState)
    lines.push(
      `  HardState Term:${ready.hardState.term} Vote:${ready.hardState.vote} Commit:${ready.hardState.commit}`,
    );
  if (ready.entries.length > 0)
    lines.push(
      `  Entries: ${ready.entries.map((e) => `${e.term}/${e.index}${e.data.length ? ` ${decode(e.data)}` : ''}`).join(', ')}`,
    );
  if (ready.snapshot) lines.push(`  Snapshot: ${ready.snapshot.metadata.term}/${ready.snapshot.metadata.index}`);
  if (ready.committedEntries.length > 0)
    lines.push(`  CommittedEntries: ${ready.committedEntries.map((e) => `${e.term}/${e.index}`).join(', ')}`);
  for (const rs of ready.readStates) lines.push(`  ReadState: index ${rs.index} ctx ${decode(rs.requestCtx)}`);
  for (const m of ready.messages) lines.push(`  ${formatMessage(m)}`);
  return lines;
}

class Interpreter {
  private cluster: Cluster | undefined;

  run(command: string): string {
    const [verb, ...args] = command.trim().split(/\s+/);
    const out: string[] = [];
    const id = (i: number): bigint => BigInt(args[i] ?? '0');
    const c = (): Cluster => {
      if (!this.cluster) throw new Error('no cluster: start with add-nodes');
      return this.cluster;
    };
    try {
      switch (verb) {
        case 'add-nodes': {
          const ids = Array.from({ length: Number(args[0]) }, (_, i) => BigInt(i + 1));
          const options: MemberOptions = {
            preVote: args.includes('prevote'),
            checkQuorum: args.includes('checkquorum'),
          };
          this.cluster = new Cluster(ids, options);
          this.wrapReady(out);
          out.push(
            `ok: ${ids.length} members${options.preVote ? ' prevote' : ''}${options.checkQuorum ? ' checkquorum' : ''}`,
          );
          break;
        }
        case 'campaign':
          c().member(id(0)).node.campaign();
          break;
        case 'propose':
          c()
            .member(id(0))
            .node.propose(text(args[1] ?? ''));
          break;
        case 'read-index':
          c()
            .member(id(0))
            .node.readIndex(text(args[1] ?? ''));
          break;
        case 'transfer-leader':
          c().member(id(0)).node.transferLeader(id(1));
          break;
        case 'tick':
          c().tick(id(0), Number(args[1] ?? 1));
          break;
        case 'isolate':
          c().isolated.add(id(0));
          break;
        case 'heal':
          c().isolated.clear();
          break;
        case 'stabilize':
          this.stabilize(out);
          break;
        case 'status': {
          const s = c().member(id(0)).node.status();
          out.push(
            `${s.id}: ${s.role} term=${s.term} vote=${s.vote} commit=${s.commit} applied=${s.applied} lead=${s.leaderId}`,
          );
          break;
        }
        default:
          throw new Error(`unknown command ${verb}`);
      }
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      out.push(`error: ${error.message}`);
    }
    return out.length > 0 ? out.join('\n') : 'ok';
  }

  private readyLines: string[] = [];

  private wrapReady(_out: string[]): void {
    (this.cluster as Cluster).onReady = (member, ready) => this.readyLines.push(...formatReady(member, ready));
  }

  private stabilize(out: string[]): void {
    this.readyLines = [];
    (this.cluster as Cluster).stabilize();
    out.push(...this.readyLines);
  }
}

for (const file of readdirSync(testdataDir)
  .filter((f) => f.endsWith('.txt'))
  .sort()) {
  test(`transcript ${file} matches its expected output`, () => {
    const path = join(testdataDir, file);
    const cases = parse(readFileSync(path, 'utf8'));
    const interpreter = new Interpreter();
    const rewritten: string[] = [];
    for (const { command, expected } of cases) {
      const actual = interpreter.run(command);
      rewritten.push(`${command}\n----\n${actual}\n`);
      if (!rewrite) assert.equal(actual, expected, `command '${command}' in ${file}`);
    }
    if (rewrite) writeFileSync(path, rewritten.join('\n'));
  });
}
