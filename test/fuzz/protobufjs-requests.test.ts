import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/proto-wire.js';
import { watchRequestFromWire } from '../../src/watch/watch-codec.js';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';

const protos = loadProtos();
const method = (service: string, name: string): grpc.MethodDefinition<unknown, unknown> =>
  (protos[service] as grpc.ServiceDefinition)[name]!;
const serialize = (definition: grpc.MethodDefinition<unknown, unknown>, wire: unknown): Uint8Array =>
  definition.requestSerialize(wire);

/** The methods whose requests protobufjs decodes (through proto-loader) before our mapping sees them. */
const methods = {
  watch: method('etcdserverpb.Watch', 'Watch'),
  compact: method('etcdserverpb.KV', 'Compact'),
  leaseGrant: method('etcdserverpb.Lease', 'LeaseGrant'),
  leaseKeepAlive: method('etcdserverpb.Lease', 'LeaseKeepAlive'),
  leaseRevoke: method('etcdserverpb.Lease', 'LeaseRevoke'),
};

const corpus: Uint8Array[] = [
  serialize(methods.watch, {
    createRequest: {
      key: Buffer.from('a'),
      rangeEnd: Buffer.from('b'),
      startRevision: '7',
      prevKv: true,
      watchId: '3',
    },
  }),
  serialize(methods.watch, { createRequest: { key: Buffer.from('k'), filters: [0, 1], fragment: true } }),
  serialize(methods.watch, { cancelRequest: { watchId: '12' } }),
  serialize(methods.watch, { progressRequest: {} }),
  serialize(methods.compact, { revision: '100', physical: true }),
  serialize(methods.leaseGrant, { TTL: '60', ID: '7587' }),
  serialize(methods.leaseKeepAlive, { ID: '-1' }),
];

/** protobufjs reports a cut message as a RangeError ("index out of range"), which the gRPC layer maps to "unexpected EOF". */
const protobufjsErrors = [Error, RangeError] as const;

test('requests decoded by protobufjs (watch, compact, lease) decode or throw a plain Error or RangeError, and watch requests always map', () => {
  runFuzz('protobufjs-requests', {
    corpus,
    check(input) {
      const bytes = Buffer.from(input);
      for (const definition of Object.values(methods))
        parseOrRefuse(() => definition.requestDeserialize(bytes), ...protobufjsErrors);
      const wire = parseOrRefuse(() => methods.watch.requestDeserialize(bytes) as WireMessage, ...protobufjsErrors);
      if (wire === undefined) return;
      const request = watchRequestFromWire(wire);
      if (request.type === 'create')
        assert.ok(Number.isFinite(request.create.watchId) && Number.isFinite(request.create.startRevision));
      if (request.type === 'cancel') assert.ok(Number.isFinite(request.watchId));
    },
  });
});
