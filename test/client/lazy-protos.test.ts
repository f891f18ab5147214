import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const moduleUrl = (path: string) => new URL(path, import.meta.url).href;

/**
 * Builds the client port's routes the way a member does at start (gRPC routes with the Watch and
 * Snapshot handlers, the JSON gateway, the config parser), then lists which of the packages that read
 * .proto files or YAML, and grpc-js, the process has loaded; `thenCall` runs before the listing.
 */
function script(thenCall: string): string {
  return `
import { createRequire } from 'node:module';
const { createGrpcServer } = await import(${JSON.stringify(moduleUrl('../../actors/client/grpc/router.js'))});
const { watchHandler } = await import(${JSON.stringify(moduleUrl('../../actors/client/grpc/watch-service.js'))});
const { createJsonGateway } = await import(${JSON.stringify(moduleUrl('../../actors/client/json-gateway.js'))});
const { loadConfig } = await import(${JSON.stringify(moduleUrl('../../src/config/config.js'))});
const { FakeKv } = await import(${JSON.stringify(moduleUrl('../api/fake-kv.js'))});
const { pino } = await import('pino');
const routes = createGrpcServer({
  kv: new FakeKv(),
  logger: pino({ level: 'silent' }),
  handlers: { 'etcdserverpb.Watch/Watch': watchHandler({}), 'etcdserverpb.Maintenance/Snapshot': () => undefined },
});
createJsonGateway({ target: () => '127.0.0.1:1' });
loadConfig({ argv: ['--name', 'm1'], env: {} });
${thenCall}
const packages = ['protobufjs', '@grpc/proto-loader', 'yaml', '@grpc/grpc-js'];
const cached = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify(packages.filter((name) => cached.some((path) => path.includes('/node_modules/' + name + '/')))));
`;
}

async function loadedPackages(thenCall: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script(thenCall)]);
  return JSON.parse(stdout) as string[];
}

test('a member builds its client routes without loading protobufjs, proto-loader, yaml or grpc-js', async () => {
  assert.deepEqual(await loadedPackages(''), []);
});

test("a method outside KV loads the protos on its call's first decode", async () => {
  const decodeCompact = "routes.byPath.get('/etcdserverpb.KV/Compact').decode(Buffer.from([8, 5]));";
  assert.deepEqual(await loadedPackages(decodeCompact), ['protobufjs', '@grpc/proto-loader']);
});

test('a snapshot save decodes its request without loading the protos', async () => {
  // Their first load reads and parses every .proto file on the member's event loop (about 0.1 s),
  // which a save's first request paid while clients' puts waited.
  const decodeSnapshot =
    "for (const bytes of [[], [8, 1]]) routes.byPath.get('/etcdserverpb.Maintenance/Snapshot').decode(Buffer.from(bytes));";
  assert.deepEqual(await loadedPackages(decodeSnapshot), []);
});
