/** Our v3lock and v3election protos carry etcd's messages and methods field for field. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { protoRoot } from '../../src/api/proto-wire.js';

const etcdApiDir = '/usr/share/gocode/src/go.etcd.io/etcd/etcdserver/api';

/** Every message as "name=id:type" lines and every method with its types, for one package. */
function shape(file: string, packageName: string): Record<string, string[]> {
  const { root } = protobuf.parse(readFileSync(file, 'utf8'), { keepCase: true });
  const namespace = root.lookup(packageName) as protobuf.Namespace;
  const described: Record<string, string[]> = {};
  for (const [name, nested] of Object.entries(namespace.nested ?? {})) {
    if (nested instanceof protobuf.Type) {
      described[name] = Object.values(nested.fields).map((f) => `${f.name}=${f.id}:${f.type}${f.repeated ? '[]' : ''}`);
    } else if (nested instanceof protobuf.Service) {
      described[name] = Object.values(nested.methods).map(
        (m) =>
          `${m.name}(${m.requestStream ? 'stream ' : ''}${m.requestType}) ${m.responseStream ? 'stream ' : ''}${m.responseType}`,
      );
    }
  }
  return described;
}

test("the v3lockpb messages and methods match etcd's", () => {
  const ours = shape(join(protoRoot(), 'v3lockpb', 'v3lock.proto'), 'v3lockpb');
  assert.deepEqual(ours, shape(join(etcdApiDir, 'v3lock', 'v3lockpb', 'v3lock.proto'), 'v3lockpb'));
  assert.deepEqual(ours.Lock, ['Lock(LockRequest) LockResponse', 'Unlock(UnlockRequest) UnlockResponse']);
});

test("the v3electionpb messages and methods match etcd's", () => {
  const ours = shape(join(protoRoot(), 'v3electionpb', 'v3election.proto'), 'v3electionpb');
  assert.deepEqual(ours, shape(join(etcdApiDir, 'v3election', 'v3electionpb', 'v3election.proto'), 'v3electionpb'));
  assert.deepEqual(ours.LeaderKey, ['name=1:bytes', 'key=2:bytes', 'rev=3:int64', 'lease=4:int64']);
  assert.ok(ours.Election?.includes('Observe(LeaderRequest) stream LeaderResponse'));
});
