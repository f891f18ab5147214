/** The audit record schema (schemas/audit-event.schema.json), compiled once for tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { packageRoot } from '../../src/lib/paths.js';

const schema: object = JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'audit-event.schema.json'), 'utf8'));
const validate = new AjvModule.default({ allErrors: true }).compile(schema);

/** The schema's complaints about one audit line, or [] when it is valid. */
export function auditLineProblems(line: string): string[] {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (error) {
    return [`not JSON: ${(error as Error).message}`];
  }
  if (validate(record)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? error.keyword}`);
}
