/**
 * Turns a command line, the environment and an optional YAML config file into raw flag values,
 * with Go's flag-package rules and error texts, as etcd parses them.
 */
import { parseYaml } from '../lib/yaml.js';
import { type FlagSpec, serverFlags, serverFlagsByName } from './flags.js';
import { parseGoDuration } from '../lib/go-duration.js';
import { ConfigError } from './config-error.js';

/** A usage error: etcd prints it with the usage text and exits with status 2. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

export { ConfigError };

export type RawValue = string | number | boolean | string[];

export interface RawFlags {
  /** Parsed values of the flags set explicitly (command line, environment or config file). */
  values: Map<string, RawValue>;
  /** Where each explicitly set value came from. */
  sources: Map<string, 'flag' | 'env' | 'file'>;
  warnings: string[];
}

/** Parses a Go duration ("1h2m3.5s", "100ms", "0") into milliseconds; undefined if malformed or negative. */
export function parseGoDurationMs(text: string): number | undefined {
  const parsed = parseGoDuration(text);
  return parsed.ok && parsed.durationNs >= 0 ? parsed.durationNs / 1e6 : undefined;
}

function parseUrls(spec: FlagSpec, text: string): string[] {
  if (text === '') return [];
  return text.split(',').map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new FlagError(`invalid value "${text}" for flag -${spec.name}: parse "${item}": invalid URI for request`);
    }
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(url.protocol)) {
      throw new FlagError(
        `invalid value "${text}" for flag -${spec.name}: URL scheme must be http, https, unix, or unixs: ${item}`,
      );
    }
    // etcd asks every URL, unix sockets included, for host:port (unix://localhost:2379 is a socket file of that name).
    if (url.port === '') {
      throw new FlagError(
        `invalid value "${text}" for flag -${spec.name}: URL address does not have the form "host:port": ${item}`,
      );
    }
    return item;
  });
}

/**
 * Go's strconv.ParseUint(text, 0, 32) syntax: decimal, or 0x, 0o, 0b or 0 (octal) prefixed digits,
 * with single underscores allowed between digits and after a prefix, as in Go literals.
 */
const uint32Syntax: ReadonlyArray<{ pattern: RegExp; radix: number; prefixChars: number }> = [
  { pattern: /^(?:0|[1-9](?:_?[0-9])*)$/, radix: 10, prefixChars: 0 },
  { pattern: /^0[xX](?:_?[0-9a-fA-F])+$/, radix: 16, prefixChars: 2 },
  { pattern: /^0[oO](?:_?[0-7])+$/, radix: 8, prefixChars: 2 },
  { pattern: /^0[bB](?:_?[01])+$/, radix: 2, prefixChars: 2 },
  { pattern: /^0(?:_?[0-7])+$/, radix: 8, prefixChars: 1 },
];

/** etcd's uint32 flag value: strconv's own error text, "invalid syntax" or "value out of range". */
function parseUint32(spec: FlagSpec, text: string): number {
  const fail = (reason: string) =>
    new FlagError(`invalid value "${text}" for flag -${spec.name}: strconv.ParseUint: parsing "${text}": ${reason}`);
  const syntax = uint32Syntax.find((candidate) => candidate.pattern.test(text));
  if (syntax === undefined) throw fail('invalid syntax');
  const digits = text.slice(syntax.prefixChars).replaceAll('_', '');
  const value = Number.parseInt(digits, syntax.radix);
  if (value > 0xffffffff) throw fail('value out of range');
  return value;
}

/** Converts one flag's text to its typed value, with Go's error text on failure. */
export function convertFlagValue(spec: FlagSpec, text: string): RawValue {
  const invalid = () => new FlagError(`invalid value "${text}" for flag -${spec.name}: parse error`);
  switch (spec.kind) {
    case 'string':
      // etcd's selective string flags name no reason: only "invalid value".
      if (spec.choices !== undefined && !spec.choices.includes(text))
        throw new FlagError(`invalid value "${text}" for flag -${spec.name}: invalid value`);
      return text;
    case 'bool': {
      const lowered = text.toLowerCase();
      if (['1', 't', 'true'].includes(lowered)) return true;
      if (['0', 'f', 'false'].includes(lowered)) return false;
      throw new FlagError(`invalid boolean value "${text}" for -${spec.name}: parse error`);
    }
    case 'uint':
    case 'int': {
      if (!/^[+-]?\d+$/.test(text) && !/^0x[0-9a-f]+$/i.test(text)) throw invalid();
      const value = Number(text);
      if (!Number.isSafeInteger(value) || (spec.kind === 'uint' && value < 0)) throw invalid();
      return value;
    }
    case 'uint32':
      return parseUint32(spec, text);
    case 'duration': {
      const valueMs = parseGoDurationMs(text);
      if (valueMs === undefined) throw invalid();
      return valueMs;
    }
    case 'urls':
      return parseUrls(spec, text);
    case 'origins':
      // etcd checks every --cors entry as a URL, except '*'.
      return text === '' ? [] : text.split(',').flatMap((item) => (item === '*' ? ['*'] : parseUrls(spec, item)));
    case 'strings':
      return text === '' ? [] : text.split(',');
  }
}

function setValue(raw: RawFlags, spec: FlagSpec, text: string, source: 'flag' | 'env' | 'file'): void {
  raw.values.set(spec.name, convertFlagValue(spec, text));
  raw.sources.set(spec.name, source);
}

/** Parses argv with Go's flag rules: -name, --name, -name=value, --name value; bools take no separate value. */
export function parseCommandLine(argv: readonly string[], raw: RawFlags): void {
  for (let position = 0; position < argv.length; position++) {
    const argument = argv[position] as string;
    if (argument === '--') {
      if (position + 1 < argv.length) throw new ConfigError(`'${argv[position + 1]}' is not a valid flag`);
      return;
    }
    if (!argument.startsWith('-') || argument === '-') throw new ConfigError(`'${argument}' is not a valid flag`);
    const body = argument.replace(/^--?/, '');
    const equalsAt = body.indexOf('=');
    const name = equalsAt >= 0 ? body.slice(0, equalsAt) : body;
    const spec = serverFlagsByName.get(name);
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    if (equalsAt >= 0) {
      setValue(raw, spec, body.slice(equalsAt + 1), 'flag');
    } else if (spec.kind === 'bool') {
      setValue(raw, spec, 'true', 'flag');
    } else {
      if (position + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      position++;
      setValue(raw, spec, argv[position] as string, 'flag');
    }
  }
}

/** The environment variable etcd reads for a flag: ETCD_ + upper case, dashes as underscores. */
export function environmentName(flagName: string): string {
  return `ETCD_${flagName.toUpperCase().replace(/-/g, '_')}`;
}

/** Applies ETCD_* variables for flags not given on the command line; a clash is an error, as in etcd. */
export function applyEnvironment(env: NodeJS.ProcessEnv, raw: RawFlags): void {
  const known = new Set<string>();
  for (const spec of serverFlags) {
    const name = environmentName(spec.name);
    known.add(name);
    const text = env[name];
    if (text === undefined || text === '') continue;
    if (raw.sources.get(spec.name) === 'flag') {
      throw new ConfigError(
        `conflicting environment variable "${name}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
      );
    }
    setValue(raw, spec, text, 'env');
  }
  for (const [name, text] of Object.entries(env)) {
    if (name.startsWith('ETCD_') && !known.has(name) && !['ETCD_UNSUPPORTED_ARCH'].includes(name)) {
      raw.warnings.push(`unrecognized environment variable ${name}=${text}`);
    }
  }
}

const transportSections: Record<string, Record<string, string>> = {
  'client-transport-security': {
    'cert-file': 'cert-file',
    'key-file': 'key-file',
    'client-cert-auth': 'client-cert-auth',
    'trusted-ca-file': 'trusted-ca-file',
    'auto-tls': 'auto-tls',
  },
  'peer-transport-security': {
    'cert-file': 'peer-cert-file',
    'key-file': 'peer-key-file',
    'client-cert-auth': 'peer-client-cert-auth',
    'trusted-ca-file': 'peer-trusted-ca-file',
    'auto-tls': 'peer-auto-tls',
    'allowed-cn': 'peer-cert-allowed-cn',
  },
};

function yamlScalarText(value: unknown, where: string): string {
  if (Array.isArray(value)) return value.map((item) => yamlScalarText(item, where)).join(',');
  if (value === null || value === undefined) return '';
  if (typeof value === 'object')
    throw new ConfigError(`error unmarshaling config file: unexpected mapping at ${where}`);
  return String(value);
}

/** Reads etcd's YAML config file format: flag names as keys, plus the two transport-security sections. */
export function applyConfigFile(text: string, raw: RawFlags): void {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`error unmarshaling config file: ${(error as Error).message}`);
  }
  if (document === null || document === undefined) return;
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigError('error unmarshaling config file: expected a mapping of flag names to values');
  }
  for (const [key, value] of Object.entries(document as Record<string, unknown>)) {
    const section = transportSections[key];
    if (section !== undefined && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
        const flagName = section[inner];
        const spec = flagName === undefined ? undefined : serverFlagsByName.get(flagName);
        if (spec === undefined)
          throw new ConfigError(`error unmarshaling config file: unknown field "${key}.${inner}"`);
        setValue(raw, spec, yamlScalarText(innerValue, `${key}.${inner}`), 'file');
      }
      continue;
    }
    const spec = serverFlagsByName.get(key);
    if (spec === undefined || key === 'config-file') {
      throw new ConfigError(`error unmarshaling config file: unknown field "${key}"`);
    }
    setValue(raw, spec, yamlScalarText(value, key), 'file');
  }
}

export function emptyRawFlags(): RawFlags {
  return { values: new Map(), sources: new Map(), warnings: [] };
}
