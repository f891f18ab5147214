/** Which commit notices a leader holds back, and how held ones leave. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommitNoticeHold, isCommitNotice } from '../../actors/member/commit-notices.js';
import { encodeProposal } from '../../src/api/proposal-codec.js';
import { type Entry, EntryType, type Message, MessageType } from '../../src/raft/types.js';

const leader = 1n;
const [f2, f3] = [2n, 3n];

function message(type: MessageType, to: bigint, commit: number, entries: Entry[] = []): Message {
  return { type, to, from: leader, term: 2, logTerm: 2, index: 10, entries, commit, reject: false, rejectHint: 0 };
}

function putFrom(origin: bigint, index: number): Entry {
  const data = encodeProposal({
    origin,
    id: index,
    body: {
      type: 'put',
      put: {
        key: Buffer.from('k'),
        value: Buffer.from('v'),
        lease: 0n,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      },
    },
  });
  return { term: 2, index, type: EntryType.normal, data };
}

const notice = (to: bigint, commit: number) => message(MessageType.app, to, commit);
const describe = (messages: readonly Message[]) =>
  messages.map(
    (m) => `${m.type === MessageType.app ? (m.entries.length === 0 ? 'notice' : 'app') : 'other'}->${m.to}@${m.commit}`,
  );

test('an empty MsgApp is a commit notice; one with entries or another type is not', () => {
  assert.equal(isCommitNotice(notice(f2, 5)), true);
  assert.equal(isCommitNotice(message(MessageType.app, f2, 5, [putFrom(leader, 11)])), false);
  assert.equal(isCommitNotice(message(MessageType.heartbeat, f2, 5)), false);
});

test('a notice is held for a follower that proposed none of the committed entries, sent to the one that did', () => {
  const hold = new CommitNoticeHold();
  const out = hold.route([notice(f2, 11), notice(f3, 11)], [putFrom(f3, 11)]);
  assert.deepEqual(describe(out), ['notice->3@11']);
  assert.equal(hold.size, 1);
  assert.deepEqual(describe(hold.takeAll()), ['notice->2@11']);
  assert.equal(hold.size, 0);
});

test('entries proposed by the leader hold both notices; the next append carries the held one out first', () => {
  const hold = new CommitNoticeHold();
  assert.deepEqual(hold.route([notice(f2, 11), notice(f3, 11)], [putFrom(leader, 11)]), []);
  const append = message(MessageType.app, f2, 11, [putFrom(leader, 12)]);
  assert.deepEqual(describe(hold.route([append], [])), ['notice->2@11', 'app->2@11']);
  assert.deepEqual(describe(hold.takeAll()), ['notice->3@11']);
});

test('a newer notice replaces a held one', () => {
  const hold = new CommitNoticeHold();
  hold.route([notice(f2, 11)], [putFrom(leader, 11)]);
  hold.route([notice(f2, 12)], [putFrom(leader, 12)]);
  assert.deepEqual(describe(hold.takeAll()), ['notice->2@12']);
});

test('nothing is held when a committed entry does not name its proposer in its header', () => {
  const hold = new CommitNoticeHold();
  const compaction: Entry = {
    term: 2,
    index: 11,
    type: EntryType.normal,
    data: encodeProposal({
      origin: f2,
      id: 1,
      body: { type: 'compaction', compaction: { revision: 5, physical: false } },
    }),
  };
  assert.deepEqual(describe(hold.route([notice(f2, 11), notice(f3, 11)], [compaction])), [
    'notice->2@11',
    'notice->3@11',
  ]);
  assert.equal(hold.size, 0);
});
