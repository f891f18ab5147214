/**
 * A JSON Schema of schemas/ as an ajv validator. The build leaves each schema's validator as code
 * (ajv's standalone output, dist/schemas/<name>.validate.cjs, stamped with the schema's sha256), so
 * a start loads that small module instead of ajv and its compiler, which cost a process about a
 * quarter of a second of CPU. A missing or stale module (the schema changed since the build) falls
 * back to compiling the schema with ajv, with the same options and so the same answers.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type AjvModule from 'ajv';
import { packageRoot } from '../lib/paths.js';

export type SchemaValidator = AjvModule.ValidateFunction;

/** The options every schema is compiled with, at build time and in the fallback alike. */
export const schemaValidatorOptions = { allErrors: true } as const;

/** The schemas the build compiles to code. */
export const compiledSchemaNames = ['config', 'auth-bootstrap', 'audit-event'] as const;
export type CompiledSchemaName = (typeof compiledSchemaNames)[number];

/** What a compiled validator module exports. */
export interface CompiledValidatorModule {
  schemaDigest: string;
  validate: SchemaValidator;
}

export function schemaPath(name: CompiledSchemaName): string {
  return join(packageRoot(), 'schemas', `${name}.schema.json`);
}

export function compiledValidatorPath(name: CompiledSchemaName): string {
  return join(packageRoot(), 'dist', 'schemas', `${name}.validate.cjs`);
}

export function schemaDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const requireHere = createRequire(import.meta.url);

/** The schema's validator: the build's code when it matches the schema, else compiled now. */
export function loadSchemaValidator(name: CompiledSchemaName): SchemaValidator {
  const text = readFileSync(schemaPath(name), 'utf8');
  const digest = schemaDigest(text);
  try {
    const compiled = requireHere(compiledValidatorPath(name)) as CompiledValidatorModule;
    if (compiled.schemaDigest === digest) return compiled.validate;
  } catch {
    // Not built (a checkout compiled with tsc alone): compile it below.
  }
  const Ajv = (requireHere('ajv') as typeof AjvModule).default;
  return new Ajv(schemaValidatorOptions).compile(JSON.parse(text) as object);
}
