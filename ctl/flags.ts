/**
 * Command-line flags parsed the way etcdctl's flag library (spf13/pflag) parses them: flags may
 * be interspersed with arguments, `--` ends them, and every error reads as pflag words it.
 */
import { goDurationString } from '../src/lib/go-duration.js';
import { goParseBool, goParseDuration, goParseInt, goQuote } from './go-format.js';

export type FlagKind = 'bool' | 'string' | 'int64' | 'duration' | 'stringSlice';

/** One flag as etcdctl declares it; `defaultText` is pflag's DefValue (help quotes it for strings). */
export interface FlagSpec {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: FlagKind;
  readonly defaultText: string;
  readonly usage: string;
  /** Accepted but left out of help, for flags newer than etcdctl 3.4. */
  readonly hidden?: boolean;
}

export type FlagValue = boolean | string | bigint | number | string[];

/** Parsed flag values plus which flags the command line (or environment) set. */
export class FlagValues {
  private readonly values = new Map<string, FlagValue>();
  readonly changed = new Set<string>();
  /** The flags an ETCDCTL_* variable set (also in `changed`), to tell them from the command line's. */
  readonly fromEnvironment = new Set<string>();

  constructor(readonly specs: readonly FlagSpec[]) {
    for (const spec of specs) this.values.set(spec.name, defaultValue(spec));
  }

  spec(name: string): FlagSpec | undefined {
    return this.specs.find((spec) => spec.name === name);
  }

  /** Sets a flag from text; returns pflag's error message when the text does not parse. */
  set(spec: FlagSpec, text: string): string | undefined {
    const parsed = parseValue(spec, text, this.changed.has(spec.name) ? this.values.get(spec.name) : undefined);
    if (typeof parsed === 'object' && parsed !== null && 'error' in parsed) {
      const flagName = spec.shorthand !== undefined ? `-${spec.shorthand}, --${spec.name}` : `--${spec.name}`;
      return `invalid argument ${goQuote(Buffer.from(text))} for ${goQuote(Buffer.from(flagName))} flag: ${parsed.error}`;
    }
    this.values.set(spec.name, parsed);
    this.changed.add(spec.name);
    return undefined;
  }

  /** Stores false as pflag does for a bool whose text did not parse, without counting the flag as set. */
  unparsedBool(spec: FlagSpec): void {
    this.values.set(spec.name, false);
  }

  bool(name: string): boolean {
    return this.get(name, 'boolean') as boolean;
  }

  /** A bool flag the command may not declare (false when absent), e.g. a newer etcdctl's flag. */
  optionalBool(name: string): boolean {
    return this.values.has(name) && this.bool(name);
  }

  string(name: string): string {
    return this.get(name, 'string') as string;
  }

  int64(name: string): bigint {
    return this.get(name, 'bigint') as bigint;
  }

  durationNs(name: string): number {
    return this.get(name, 'number') as number;
  }

  /** The flag's value as pflag's Value.String() prints it (etcdctl's --debug lists them so). */
  text(name: string): string {
    const spec = this.spec(name);
    const value = this.values.get(name);
    if (spec === undefined || value === undefined) return '';
    if (spec.kind === 'duration') return goDurationString(value as number);
    if (Array.isArray(value)) return `[${value.join(',')}]`;
    return String(value);
  }

  strings(name: string): string[] {
    const value = this.values.get(name);
    if (!Array.isArray(value)) throw new Error(`expected flag --${name} to be a list, saw ${String(value)}`);
    return value;
  }

  private get(name: string, type: string): FlagValue {
    const value = this.values.get(name);
    if (typeof value !== type) throw new Error(`expected flag --${name} to hold a ${type}, saw ${String(value)}`);
    return value as FlagValue;
  }
}

function defaultValue(spec: FlagSpec): FlagValue {
  if (spec.kind === 'stringSlice')
    return spec.defaultText
      .slice(1, -1)
      .split(',')
      .filter((part) => part !== '');
  const parsed = parseValue(spec, spec.defaultText, undefined);
  if (typeof parsed === 'object' && parsed !== null && 'error' in parsed)
    throw new Error(`bad default for --${spec.name}: ${parsed.error}`);
  return parsed;
}

function parseValue(spec: FlagSpec, text: string, previous: FlagValue | undefined): FlagValue | { error: string } {
  switch (spec.kind) {
    case 'bool': {
      const parsed = goParseBool(text);
      return parsed.ok ? parsed.value : { error: parsed.error };
    }
    case 'string':
      return text;
    case 'int64': {
      const parsed = goParseInt(text, 0);
      return parsed.ok ? parsed.value : { error: parsed.error };
    }
    case 'duration': {
      const parsed = goParseDuration(text);
      return parsed.ok ? parsed.value : { error: parsed.error };
    }
    case 'stringSlice': {
      // The first use replaces the default; later uses append, as pflag's string slices do.
      const parts = text === '' ? [] : text.split(',');
      return Array.isArray(previous) ? [...previous, ...parts] : parts;
    }
  }
}

/** What parsing found: positional arguments, or the error pflag would report. */
export type ParseResult = { ok: true; args: string[]; help: boolean } | { ok: false; error: string };

/** Parses `argv` against `values.specs` like pflag's FlagSet.Parse with interspersed arguments. */
export function parseFlags(argv: readonly string[], values: FlagValues): ParseResult {
  const args: string[] = [];
  const rest = [...argv];
  while (rest.length > 0) {
    const arg = rest.shift() ?? '';
    if (arg.length < 2 || !arg.startsWith('-')) {
      args.push(arg);
      continue;
    }
    if (arg === '--') {
      args.push(...rest);
      break;
    }
    const error = arg.startsWith('--') ? parseLong(arg, rest, values) : parseShort(arg, rest, values);
    if (error !== undefined) return { ok: false, error };
  }
  return { ok: true, args, help: values.changed.has('help') && values.bool('help') };
}

function parseLong(arg: string, rest: string[], values: FlagValues): string | undefined {
  const body = arg.slice(2);
  if (body.startsWith('-') || body.startsWith('=')) return `bad flag syntax: ${arg}`;
  const equals = body.indexOf('=');
  const name = equals < 0 ? body : body.slice(0, equals);
  const spec = values.spec(name);
  if (spec === undefined) return `unknown flag: --${name}`;
  if (equals >= 0) return values.set(spec, body.slice(equals + 1));
  if (spec.kind === 'bool') return values.set(spec, 'true');
  if (rest.length === 0) return `flag needs an argument: ${arg}`;
  return values.set(spec, rest.shift() ?? '');
}

function parseShort(arg: string, rest: string[], values: FlagValues): string | undefined {
  let shorthands = arg.slice(1);
  while (shorthands.length > 0) {
    const letter = shorthands[0] ?? '';
    const spec = values.specs.find((candidate) => candidate.shorthand === letter);
    if (spec === undefined) return `unknown shorthand flag: '${letter}' in -${shorthands}`;
    let text: string;
    if (shorthands.length > 2 && shorthands[1] === '=') {
      text = shorthands.slice(2);
      shorthands = '';
    } else if (spec.kind === 'bool') {
      text = 'true';
      shorthands = shorthands.slice(1);
    } else if (shorthands.length > 1) {
      text = shorthands.slice(1);
      shorthands = '';
    } else if (rest.length > 0) {
      text = rest.shift() ?? '';
      shorthands = '';
    } else {
      return `flag needs an argument: '${letter}' in -${shorthands}`;
    }
    const error = values.set(spec, text);
    if (error !== undefined) return error;
  }
  return undefined;
}

/** Environment variable etcdctl reads for a global flag, e.g. ETCDCTL_DIAL_TIMEOUT. */
export function flagEnvName(name: string): string {
  return `ETCDCTL_${name.replace(/-/g, '_').toUpperCase()}`;
}

/** Fills flags the command line left alone from ETCDCTL_* variables, as etcdctl does. */
export function applyEnvironment(values: FlagValues, names: readonly string[], env: NodeJS.ProcessEnv): void {
  for (const name of names) {
    const spec = values.spec(name);
    const text = env[flagEnvName(name)];
    if (spec === undefined || values.changed.has(name) || text === undefined || text === '') continue;
    // Taken even when it does not parse: etcdctl counts it as used either way.
    values.fromEnvironment.add(name);
    // etcdctl drops the error of a malformed variable, but pflag has already stored what its
    // parser returned with it: a bool that does not parse is false (ETCDCTL_INSECURE_TRANSPORT=maybe
    // turns TLS on), whatever its default.
    if (values.set(spec, text) !== undefined && spec.kind === 'bool') values.unparsedBool(spec);
  }
}

/** What etcdctl's check of the ETCDCTL_* variables says once it has read them for a client. */
export interface EnvironmentCheck {
  /** Variables no inherited flag took, each as "NAME=value", in the environment's order. */
  readonly unrecognized: string[];
  /** The first variable whose flag the command line set as well; etcdctl stops there. */
  readonly conflicting?: string;
}

/**
 * etcdctl's check after reading the ETCDCTL_* variables: a variable beside the command-line flag it
 * names is fatal, one no flag took is only reported. `names` are the inherited flags.
 */
export function checkEnvironment(
  values: FlagValues,
  names: readonly string[],
  env: NodeJS.ProcessEnv,
): EnvironmentCheck {
  const onCommandLine = (name: string): boolean => values.changed.has(name) && !values.fromEnvironment.has(name);
  const used = new Set(names.filter((name) => !onCommandLine(name)).map(flagEnvName));
  const setOnCommandLine = new Set(names.filter(onCommandLine).map(flagEnvName));
  const unrecognized: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    // etcdctl removes ETCDCTL_API from its environment before any command runs.
    if (value === undefined || key === 'ETCDCTL_API' || (used.has(key) && value !== '')) continue;
    if (setOnCommandLine.has(key)) return { unrecognized, conflicting: key };
    if (key.startsWith('ETCDCTL_')) unrecognized.push(`${key}=${value}`);
  }
  return { unrecognized };
}
