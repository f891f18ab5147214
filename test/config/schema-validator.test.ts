/**
 * The build writes each schema's validator as code (dist/schemas/*.validate.cjs) so a start need not
 * compile the schema. That code must answer as ajv's own compile of the schema does, and a module
 * left from an older schema must not be used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { loadConfig } from '../../src/config/config.js';
import {
  compiledSchemaNames,
  compiledValidatorPath,
  loadSchemaValidator,
  schemaDigest,
  schemaPath,
  schemaValidatorOptions,
  type CompiledValidatorModule,
} from '../../src/config/schema-validator.js';

const requireHere = createRequire(import.meta.url);

function ajvCompiled(name: (typeof compiledSchemaNames)[number]) {
  return new AjvModule.default(schemaValidatorOptions).compile(JSON.parse(readFileSync(schemaPath(name), 'utf8')));
}

test('the build left a validator for every schema, stamped with the schema as it is now', () => {
  for (const name of compiledSchemaNames) {
    const path = compiledValidatorPath(name);
    assert.ok(existsSync(path), `expected the build to write ${path}`);
    const compiled = requireHere(path) as CompiledValidatorModule;
    assert.equal(compiled.schemaDigest, schemaDigest(readFileSync(schemaPath(name), 'utf8')), name);
    assert.equal(loadSchemaValidator(name), compiled.validate, `${name}: the start should use the built code`);
  }
});

test("the built config validator answers as ajv's compile of the schema", () => {
  const { config } = loadConfig({ argv: ['--name', 'm1'], env: {} });
  const samples: unknown[] = [
    config,
    { ...config, name: 7 },
    { ...config, heartbeatIntervalMs: 'fast', snapshotCount: -1 },
    { ...config, unknownField: true },
    {},
    [],
    null,
  ];
  const built = (requireHere(compiledValidatorPath('config')) as CompiledValidatorModule).validate;
  const reference = ajvCompiled('config');
  for (const sample of samples) {
    assert.equal(built(sample), reference(sample), JSON.stringify(sample)?.slice(0, 80));
    assert.deepEqual(built.errors ?? null, reference.errors ?? null);
  }
  assert.equal(built(config), true);
});

test("the built auth bootstrap and audit validators answer as ajv's compile of their schemas", () => {
  const samples: Record<string, unknown[]> = {
    'auth-bootstrap': [
      { users: [{ name: 'root', password: 'x', roles: ['root'] }], enable: true },
      { users: [{ name: 7 }] },
      { roles: [{ name: 'r', permissions: [{ type: 'READ', key: 'a' }] }] },
      { enable: 'yes' },
      {},
    ],
    'audit-event': [
      {
        time: '2026-12-06T00:00:00Z',
        member: 'm1',
        remote: '127.0.0.1:1',
        method: '/etcdserverpb.KV/Put',
        outcome: 'ok',
        code: 0,
      },
      { time: 'yesterday', outcome: 'maybe' },
      {},
    ],
  };
  for (const [name, list] of Object.entries(samples)) {
    const key = name as (typeof compiledSchemaNames)[number];
    const built = (requireHere(compiledValidatorPath(key)) as CompiledValidatorModule).validate;
    const reference = ajvCompiled(key);
    for (const sample of list) {
      assert.equal(built(sample), reference(sample), `${name}: ${JSON.stringify(sample)}`);
      assert.deepEqual(built.errors ?? null, reference.errors ?? null);
    }
  }
});

test('a validator built from another schema is not used: the schema is compiled instead', () => {
  const path = compiledValidatorPath('config');
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-schema-'));
  const saved = join(dir, 'config.validate.cjs');
  copyFileSync(path, saved);
  try {
    // A module whose stamp names another schema, and that would accept anything.
    writeFileSync(path, 'module.exports = { schemaDigest: "0", validate: () => true };\n');
    delete requireHere.cache[path];
    const validate = loadSchemaValidator('config');
    assert.equal(validate({ name: 7 }), false, 'a stale module must not decide');
  } finally {
    copyFileSync(saved, path);
    delete requireHere.cache[path];
    rmSync(dir, { recursive: true, force: true });
  }
});
