/**
 * Build step (after tsc): writes each schema's ajv validator as code to dist/schemas, stamped with
 * the schema's sha256, for src/config/schema-validator.ts to load at start instead of compiling.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import AjvModule from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import {
  compiledSchemaNames,
  compiledValidatorPath,
  schemaDigest,
  schemaPath,
  schemaValidatorOptions,
} from '../../src/config/schema-validator.js';

for (const name of compiledSchemaNames) {
  const text = readFileSync(schemaPath(name), 'utf8');
  const ajv = new AjvModule.default({ ...schemaValidatorOptions, code: { source: true } });
  const validate = ajv.compile(JSON.parse(text) as object);
  const code = standaloneModule.default(ajv, validate);
  const out = compiledValidatorPath(name);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${code}\nmodule.exports = { schemaDigest: ${JSON.stringify(schemaDigest(text))}, validate: module.exports };\n`,
  );
}
