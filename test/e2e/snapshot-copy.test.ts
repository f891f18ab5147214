/**
 * Where a save's backend copy lives: in memory (backupCopyMemoryDir), not beside the backend on
 * disk, where LMDB's O_DIRECT writes of the copy went to the device beside the WAL's fsyncs. A
 * client that reads one response and stops holds the save open (the snapshot thread waits for it),
 * so the copy can be looked at; once the client goes away the copy is deleted.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/proto-wire.js';
import { backupCopyMemoryDir } from '../../src/lib/limits.js';
import { Member } from '../support/member.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip =
  sut.command === undefined
    ? sut.skipReason
    : existsSync(backupCopyMemoryDir)
      ? undefined
      : `${backupCopyMemoryDir} does not exist on this host, so backups are copied beside the backend`;
if (skip !== undefined) process.stdout.write(`# skipping the backup copy test: ${skip}\n`);

/** Enough data that the save outlasts what the snapshot thread builds ahead plus the client's window. */
const keys = 8_000;
const valueBytes = 1_024;
/** Polls of the copy's directory after the client went away, 100 ms apart. */
const removalPollsMax = 100;

type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function clientOf(member: Member, service: 'KV' | 'Maintenance'): GenericClient {
  const loaded = grpc.loadPackageDefinition(loadProtos()) as unknown as {
    etcdserverpb: Record<string, new (address: string, credentials: grpc.ChannelCredentials) => GenericClient>;
  };
  return new loaded.etcdserverpb[service]!(
    member.clientUrl.replace(/^http:\/\//, ''),
    grpc.credentials.createInsecure(),
  );
}

async function load(member: Member): Promise<void> {
  const kv = clientOf(member, 'KV');
  const value = Buffer.alloc(valueBytes, 'v');
  try {
    for (let start = 0; start < keys; start += 100) {
      const success = Array.from({ length: 100 }, (_, index) => ({
        requestPut: { key: Buffer.from(`key/${start + index}`), value },
      }));
      await new Promise<void>((resolve, reject) =>
        kv.Txn!({ success }, (error: Error | null) => (error === null ? resolve() : reject(error))),
      );
    }
  } finally {
    kv.close();
  }
}

/** The member process's copies in memory: backup directories named with its pid. */
function memoryCopies(member: Member): string[] {
  return readdirSync(backupCopyMemoryDir).filter((name) => name.startsWith(`tsetcd-backup-${member.pid}-`));
}

test(
  'a snapshot save copies the backend into memory, not beside the backend, and deletes the copy when the client goes away',
  skip === undefined ? {} : { skip },
  async () => {
    const member = await Member.start({ command: sut.command as MemberCommand });
    const maintenance = clientOf(member, 'Maintenance');
    try {
      await load(member);
      const stream = maintenance.Snapshot!({}) as grpc.ClientReadableStream<{ remainingBytes: string }>;
      stream.on('error', () => {}); // the cancel below ends it with CANCELLED
      const first = await new Promise<{ remainingBytes: string }>((resolve) => stream.once('data', resolve));
      stream.pause();
      assert.ok(Number(first.remainingBytes) > (keys * valueBytes) / 2, `remaining ${first.remainingBytes}`);

      const copies = memoryCopies(member);
      assert.equal(copies.length, 1, `copies in ${backupCopyMemoryDir}: ${copies.join(', ')}`);
      assert.ok(existsSync(join(backupCopyMemoryDir, copies[0]!, 'copy', 'data.mdb')), 'the copy holds the data file');
      const snapDir = join(member.dataDir, 'member', 'snap');
      assert.deepEqual(
        readdirSync(snapDir).filter((name) => name.startsWith('backup-')),
        [],
        'no copy beside the backend',
      );

      stream.cancel();
      let polls = 0;
      while (memoryCopies(member).length > 0 && polls++ < removalPollsMax) await sleep(100);
      assert.deepEqual(memoryCopies(member), [], 'the copy was deleted');
    } finally {
      maintenance.close();
      await member.destroy();
    }
  },
);
