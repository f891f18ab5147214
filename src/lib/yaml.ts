/**
 * YAML parsing, with the yaml package loaded on first use: only a member given --config-file or
 * an auth bootstrap file reads YAML, and loading the package cost the supervisor about 50 ms of
 * CPU at every start.
 */
import { createRequire } from 'node:module';

let yaml: typeof import('yaml') | undefined;

/** The value of one YAML document, as the yaml package's parse returns it. */
export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}
