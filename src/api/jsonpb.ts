/**
 * JSON as etcd's gRPC gateway speaks it: requests are read the way golang/protobuf's jsonpb reads
 * them through Go's encoding/json (so clients see Go's exact error texts), and responses are
 * written the way jsonpb writes them with OrigName set and defaults left out. Messages are
 * protobufjs reflection types, so every etcd message is covered without a hand-written mapping.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type protobuf from 'protobufjs';
import { protoFiles, protoRoot } from './proto-wire.js';

/**
 * Nesting deeper than this is refused. Go allows 10000 levels; we stop sooner because the
 * parser recurses and etcd's deepest real request (a txn inside a txn) is a handful of levels.
 */
export const gatewayJsonNestingMax = 512;

export type JsonValue =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; text: string }
  /** `raw` is the text between the quotes before unescaping; jsonpb reads quoted numbers from it. */
  | { kind: 'string'; value: string; raw: string }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'object'; entries: Map<string, JsonValue> };

/** A request body or field the gateway refuses, with the text Go would give. */
export class GatewayJsonError extends Error {}

/** Thrown inside the scanner when the input stops before the value does. */
class IncompleteInput {}

// ------------------------------------------------------------------------------------------------
// Scanning: Go's encoding/json grammar and error texts.
// ------------------------------------------------------------------------------------------------

const goEscapes: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r' };

/** How Go's scanner names an offending byte, e.g. 'x', '\n', '"', '\''. */
function quoteChar(byte: number): string {
  if (byte === 0x27) return `'\\''`;
  if (byte === 0x22) return `'"'`;
  const escape = goEscapes[byte];
  if (escape !== undefined) return `'${escape}'`;
  if (byte < 0x20 || byte === 0x7f) return `'\\x${byte.toString(16).padStart(2, '0')}'`;
  if ((byte >= 0x80 && byte < 0xa0) || byte === 0xad) return `'\\u00${byte.toString(16)}'`;
  return `'${String.fromCharCode(byte)}'`;
}

function invalid(byte: number, context: string): GatewayJsonError {
  return new GatewayJsonError(`invalid character ${quoteChar(byte)} ${context}`);
}

const isSpace = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39;
const isHex = (byte: number) => isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
const escapable = new Set([...'"\\/bfnrt'].map((char) => char.charCodeAt(0)));

class Scanner {
  position: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    /** True when no more input will come, so a number may end at the end of the input. */
    private readonly final: boolean,
  ) {
    this.position = start;
  }

  atEnd(): boolean {
    return this.position >= this.bytes.length;
  }

  skipSpace(): void {
    while (this.position < this.bytes.length && isSpace(this.bytes[this.position]!)) this.position++;
  }

  peek(): number {
    const byte = this.bytes[this.position];
    if (byte === undefined) throw new IncompleteInput();
    return byte;
  }

  value(depth: number): JsonValue {
    if (depth > gatewayJsonNestingMax) throw new GatewayJsonError('exceeded max depth');
    this.skipSpace();
    const byte = this.peek();
    if (byte === 0x7b) return this.object(depth);
    if (byte === 0x5b) return this.array(depth);
    if (byte === 0x22) return this.string();
    if (byte === 0x2d || isDigit(byte)) return this.number();
    if (byte === 0x74) return (this.literal('true'), { kind: 'bool', value: true });
    if (byte === 0x66) return (this.literal('false'), { kind: 'bool', value: false });
    if (byte === 0x6e) return (this.literal('null'), { kind: 'null' });
    throw invalid(byte, 'looking for beginning of value');
  }

  private object(depth: number): JsonValue {
    const entries = new Map<string, JsonValue>();
    this.position++;
    this.skipSpace();
    if (this.peek() === 0x7d) return (this.position++, { kind: 'object', entries });
    for (;;) {
      const start = this.peek();
      if (start !== 0x22) throw invalid(start, 'looking for beginning of object key string');
      const key = this.string();
      this.skipSpace();
      const colon = this.peek();
      if (colon !== 0x3a) throw invalid(colon, 'after object key');
      this.position++;
      entries.set(key.value, this.value(depth + 1));
      this.skipSpace();
      const next = this.peek();
      this.position++;
      if (next === 0x7d) return { kind: 'object', entries };
      if (next !== 0x2c) throw invalid(next, 'after object key:value pair');
      this.skipSpace();
    }
  }

  private array(depth: number): JsonValue {
    const items: JsonValue[] = [];
    this.position++;
    this.skipSpace();
    if (this.peek() === 0x5d) return (this.position++, { kind: 'array', items });
    for (;;) {
      items.push(this.value(depth + 1));
      this.skipSpace();
      const next = this.peek();
      this.position++;
      if (next === 0x5d) return { kind: 'array', items };
      if (next !== 0x2c) throw invalid(next, 'after array element');
    }
  }

  private string(): JsonValue & { kind: 'string' } {
    const start = ++this.position;
    for (;;) {
      const byte = this.peek();
      if (byte === 0x22) break;
      if (byte < 0x20) throw invalid(byte, 'in string literal');
      this.position++;
      if (byte === 0x5c) this.escape();
    }
    const raw = Buffer.from(this.bytes.subarray(start, this.position)).toString('utf8');
    this.position++;
    return { kind: 'string', value: JSON.parse(`"${raw}"`) as string, raw };
  }

  private escape(): void {
    const byte = this.peek();
    this.position++;
    if (byte === 0x75) {
      for (let index = 0; index < 4; index++) {
        const hex = this.peek();
        if (!isHex(hex)) throw invalid(hex, 'in \\u hexadecimal character escape');
        this.position++;
      }
    } else if (!escapable.has(byte)) {
      throw invalid(byte, 'in string escape code');
    }
  }

  /** The next byte of a number, or undefined where the number may legitimately end. */
  private numberByte(): number | undefined {
    if (!this.atEnd()) return this.bytes[this.position];
    if (this.final) return undefined;
    throw new IncompleteInput();
  }

  private digits(context: string): void {
    const first = this.numberByte();
    if (first === undefined) throw new IncompleteInput();
    if (!isDigit(first)) throw invalid(first, context);
    while (isDigit(this.numberByte() ?? 0)) this.position++;
  }

  private number(): JsonValue {
    const start = this.position;
    if (this.peek() === 0x2d) this.position++;
    const lead = this.numberByte();
    if (lead === 0x30) this.position++;
    else this.digits('in numeric literal');
    if (this.numberByte() === 0x2e) {
      this.position++;
      this.digits('after decimal point in numeric literal');
    }
    const exponent = this.numberByte();
    if (exponent === 0x65 || exponent === 0x45) {
      this.position++;
      const sign = this.numberByte();
      if (sign === 0x2b || sign === 0x2d) this.position++;
      this.digits('in exponent of numeric literal');
    }
    return { kind: 'number', text: Buffer.from(this.bytes.subarray(start, this.position)).toString('latin1') };
  }

  private literal(word: string): void {
    this.position++;
    for (let index = 1; index < word.length; index++) {
      const byte = this.peek();
      if (byte !== word.charCodeAt(index)) throw invalid(byte, `in literal ${word} (expecting '${word[index]}')`);
      this.position++;
    }
  }
}

export type JsonPrefix =
  | { kind: 'value'; value: JsonValue; end: number }
  /** Only whitespace remains: Go's decoder reports io.EOF. */
  | { kind: 'end' }
  /** The value continues past the bytes seen so far. */
  | { kind: 'incomplete' };

/**
 * Reads the next JSON value from `bytes` at `start`, as Go's json.Decoder does on a request
 * body: bytes after the value are left for the next read. With `final`, no more bytes will come.
 */
export function readJsonPrefix(bytes: Uint8Array, start: number, final: boolean): JsonPrefix {
  const scanner = new Scanner(bytes, start, final);
  scanner.skipSpace();
  if (scanner.atEnd()) return { kind: 'end' };
  try {
    const value = scanner.value(0);
    return { kind: 'value', value, end: scanner.position };
  } catch (error) {
    if (error instanceof IncompleteInput) return { kind: 'incomplete' };
    throw error;
  }
}

/** Parses a whole document as Go's json.Unmarshal does, with its error texts. */
function parseWholeJson(text: string): JsonValue {
  const bytes = Buffer.from(text, 'utf8');
  const scanner = new Scanner(bytes, 0, true);
  try {
    const value = scanner.value(0);
    scanner.skipSpace();
    if (!scanner.atEnd()) throw invalid(scanner.peek(), 'after top-level value');
    return value;
  } catch (error) {
    if (error instanceof IncompleteInput) throw new GatewayJsonError('unexpected end of JSON input');
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------
// Go's base64 (StdEncoding, padded; CR and LF skipped), with its error offsets.
// ------------------------------------------------------------------------------------------------

const base64Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const base64Values = new Map([...base64Alphabet].map((char, index) => [char.charCodeAt(0), index]));
const isNewline = (byte: number | undefined) => byte === 0x0a || byte === 0x0d;

function corruptBase64(offset: number): GatewayJsonError {
  return new GatewayJsonError(`illegal base64 data at input byte ${offset}`);
}

/** Where a quantum's '=' padding ends; throws where Go's decoder would. */
function checkPadding(input: Uint8Array, padAt: number, quantumIndex: number): number {
  if (quantumIndex < 2) throw corruptBase64(padAt);
  let position = padAt + 1;
  if (quantumIndex === 2) {
    while (isNewline(input[position])) position++;
    if (position === input.length) throw corruptBase64(input.length);
    if (input[position] !== 0x3d) throw corruptBase64(position - 1);
    position++;
  }
  while (isNewline(input[position])) position++;
  if (position < input.length) throw corruptBase64(position);
  return position;
}

/** Decodes standard padded base64 exactly as Go's base64.StdEncoding does. */
export function decodeGoBase64(input: Uint8Array): Buffer {
  const output: number[] = [];
  let position = 0;
  for (;;) {
    const quantum: number[] = [];
    while (quantum.length < 4) {
      if (position === input.length) {
        if (quantum.length === 0) return Buffer.from(output);
        throw corruptBase64(position - quantum.length);
      }
      const byte = input[position++]!;
      const digit = base64Values.get(byte);
      if (digit !== undefined) quantum.push(digit);
      else if (isNewline(byte)) continue;
      else if (byte !== 0x3d) throw corruptBase64(position - 1);
      else {
        position = checkPadding(input, position - 1, quantum.length);
        break;
      }
    }
    const bits = quantum.reduce((sum, digit, index) => sum | (digit << (18 - 6 * index)), 0);
    const count = quantum.length === 4 ? 3 : quantum.length - 1;
    for (let index = 0; index < count; index++) output.push((bits >> (16 - 8 * index)) & 0xff);
    if (quantum.length < 4) return Buffer.from(output);
  }
}

// ------------------------------------------------------------------------------------------------
// Reflection: the etcd protos as protobufjs types, keeping the .proto field names.
// ------------------------------------------------------------------------------------------------

let cachedRoot: protobuf.Root | undefined;
let protobufModule: typeof protobuf | undefined;

/** protobufjs, loaded on first use: only the JSON gateway needs it, and a member starts without it. */
function protobufjs(): typeof protobuf {
  protobufModule ??= createRequire(import.meta.url)('protobufjs') as typeof protobuf;
  return protobufModule;
}

/** The etcd protos with original field names (`cluster_id`, `ID`), loaded once per process. */
export function gatewayProtoRoot(): protobuf.Root {
  if (cachedRoot !== undefined) return cachedRoot;
  const root = new (protobufjs().Root)();
  root.resolvePath = (_origin, target) => join(protoRoot(), target);
  root.loadSync([...protoFiles], { keepCase: true });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

/** protoc's JSON name: underscores dropped, the letter after each one upper-cased. */
function jsonName(name: string): string {
  return name.replace(/_(.)/g, (_match, letter: string) => letter.toUpperCase()).replace(/_$/, '');
}

/** Go's name for a generated enum type, e.g. etcdserverpb.RangeRequest_SortOrder. */
function goEnumName(enumType: protobuf.Enum): string {
  const path = [enumType.name];
  let scope = enumType.parent;
  while (scope instanceof protobufjs().Type) {
    path.unshift(scope.name);
    scope = scope.parent;
  }
  return `${scope?.name ?? ''}.${path.join('_')}`;
}

const kindNames: Record<JsonValue['kind'], string> = {
  null: 'null',
  bool: 'bool',
  number: 'number',
  string: 'string',
  array: 'array',
  object: 'object',
};

function typeError(value: JsonValue, goType: string): GatewayJsonError {
  return new GatewayJsonError(`json: cannot unmarshal ${kindNames[value.kind]} into Go value of type ${goType}`);
}

interface IntegerType {
  goType: string;
  min: bigint;
  max: bigint;
}

const integerTypes: Record<string, IntegerType> = {
  int64: { goType: 'int64', min: -(2n ** 63n), max: 2n ** 63n - 1n },
  sint64: { goType: 'int64', min: -(2n ** 63n), max: 2n ** 63n - 1n },
  sfixed64: { goType: 'int64', min: -(2n ** 63n), max: 2n ** 63n - 1n },
  uint64: { goType: 'uint64', min: 0n, max: 2n ** 64n - 1n },
  fixed64: { goType: 'uint64', min: 0n, max: 2n ** 64n - 1n },
  int32: { goType: 'int32', min: -(2n ** 31n), max: 2n ** 31n - 1n },
  sint32: { goType: 'int32', min: -(2n ** 31n), max: 2n ** 31n - 1n },
  sfixed32: { goType: 'int32', min: -(2n ** 31n), max: 2n ** 31n - 1n },
  uint32: { goType: 'uint32', min: 0n, max: 2n ** 32n - 1n },
  fixed32: { goType: 'uint32', min: 0n, max: 2n ** 32n - 1n },
};

/** jsonpb accepts integers quoted or bare; quoted ones are re-read as bare JSON without unescaping. */
function readInteger(value: JsonValue, integer: IntegerType, goType = integer.goType): bigint | undefined {
  const bare = value.kind === 'string' ? parseWholeJson(value.raw) : value;
  if (bare.kind === 'null') return undefined;
  if (bare.kind !== 'number') throw typeError(bare, goType);
  const parsed = /^-?\d+$/.test(bare.text) ? BigInt(bare.text) : undefined;
  if (parsed === undefined || parsed < integer.min || parsed > integer.max) {
    throw new GatewayJsonError(`json: cannot unmarshal number ${bare.text} into Go value of type ${goType}`);
  }
  return parsed;
}

function readEnum(value: JsonValue, enumType: protobuf.Enum): number | undefined {
  if (value.kind === 'string') {
    const number = enumType.values[value.value];
    if (number === undefined) {
      throw new GatewayJsonError(`unknown value ${JSON.stringify(value.value)} for enum ${goEnumName(enumType)}`);
    }
    return number;
  }
  const parsed = readInteger(value, integerTypes.int32!, goEnumName(enumType));
  return parsed === undefined ? undefined : Number(parsed);
}

/** One field's value in the shape protobufjs's fromObject accepts; undefined leaves the default. */
function readScalar(field: protobuf.Field, value: JsonValue): unknown {
  if (field.resolvedType instanceof protobufjs().Type) return readMessage(field.resolvedType, value);
  if (field.resolvedType instanceof protobufjs().Enum) return readEnum(value, field.resolvedType);
  const integer = integerTypes[field.type];
  if (integer !== undefined) {
    const parsed = readInteger(value, integer);
    return parsed === undefined ? undefined : parsed.toString();
  }
  switch (field.type) {
    case 'bool':
      if (value.kind !== 'bool') throw typeError(value, 'bool');
      return value.value;
    case 'string':
      if (value.kind !== 'string') throw typeError(value, 'string');
      return value.value;
    case 'bytes':
      if (value.kind !== 'string') throw typeError(value, '[]uint8');
      return decodeGoBase64(Buffer.from(value.value, 'utf8'));
    case 'double':
    case 'float':
      if (value.kind === 'number') return Number(value.text);
      throw typeError(value, field.type === 'double' ? 'float64' : 'float32');
    default:
      throw new Error(`gateway JSON: field ${field.fullName} has unsupported type ${field.type}`);
  }
}

function readField(field: protobuf.Field, value: JsonValue): unknown {
  if (!field.repeated) return readScalar(field, value);
  if (value.kind !== 'array') throw typeError(value, '[]json.RawMessage');
  return value.items.map((item) => readScalar(field, item));
}

/** Takes a field's JSON from the object by either accepted name; the camelCase one wins. */
function takeField(entries: Map<string, JsonValue>, field: protobuf.Field): JsonValue | undefined {
  const camel = entries.get(jsonName(field.name));
  return camel ?? entries.get(field.name);
}

function readMessage(type: protobuf.Type, value: JsonValue): Record<string, unknown> {
  const message: Record<string, unknown> = {};
  if (value.kind === 'null') return message;
  if (value.kind !== 'object') throw typeError(value, 'map[string]json.RawMessage');
  // jsonpb visits plain fields in declaration order and oneof members after them.
  const fields = [...type.fieldsArray.filter((f) => !f.partOf), ...type.fieldsArray.filter((f) => f.partOf)];
  for (const field of fields) {
    const fieldValue = takeField(value.entries, field);
    if (fieldValue === undefined || fieldValue.kind === 'null') continue;
    const read = readField(field, fieldValue);
    if (read !== undefined) message[field.name] = read;
  }
  return message;
}

/** Turns a request's JSON into the protobuf bytes of `type`, or throws GatewayJsonError. */
export function encodeJsonRequest(type: protobuf.Type, value: JsonValue): Uint8Array {
  return type.encode(type.fromObject(readMessage(type, value))).finish();
}

// ------------------------------------------------------------------------------------------------
// Writing: jsonpb with OrigName, defaults omitted, 64-bit integers quoted, enums by name.
// ------------------------------------------------------------------------------------------------

const goStringEscapes: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
  '\\b': '\\u0008',
  '\\f': '\\u000c',
};

/** A JSON string as Go's encoder writes it: HTML characters and line separators escaped. */
export function goJsonString(text: string): string {
  return JSON.stringify(text).replace(/[<>&\u2028\u2029]|\\[bf]/g, (match) => goStringEscapes[match] ?? match);
}

const longTypes = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);

function isLongZero(value: unknown): boolean {
  if (typeof value === 'number') return value === 0;
  if (typeof value === 'string') return value === '0';
  const long = value as protobuf.Long;
  return long.low === 0 && long.high === 0;
}

function longText(value: unknown, unsigned: boolean): string {
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  const long = value as protobuf.Long;
  const bits = (BigInt(long.high >>> 0) << 32n) | BigInt(long.low >>> 0);
  return (unsigned ? bits : BigInt.asIntN(64, bits)).toString();
}

/** The JSON of one value, or undefined when jsonpb would leave it out as a default. */
function writeScalar(field: protobuf.Field, value: unknown): string | undefined {
  if (field.resolvedType instanceof protobufjs().Type) {
    return value === null || value === undefined
      ? undefined
      : writeMessage(field.resolvedType, value as protobuf.Message);
  }
  if (field.resolvedType instanceof protobufjs().Enum) {
    const name = field.resolvedType.valuesById[value as number];
    return value === 0 ? undefined : name !== undefined ? goJsonString(name) : String(value);
  }
  if (longTypes.has(field.type)) {
    return isLongZero(value)
      ? undefined
      : goJsonString(longText(value, field.type.includes('fixed') || field.type.startsWith('u')));
  }
  if (field.type === 'bytes') {
    const bytes = value as Uint8Array;
    return bytes.length === 0 ? undefined : goJsonString(Buffer.from(bytes).toString('base64'));
  }
  if (field.type === 'string') return value === '' ? undefined : goJsonString(value as string);
  if (field.type === 'bool') return value === true ? 'true' : undefined;
  return value === 0 ? undefined : String(value);
}

/** Repeated elements are written even when they hold default values, as jsonpb does. */
function writeElement(field: protobuf.Field, value: unknown): string {
  return writeScalar(field, value) ?? (field.resolvedType instanceof protobufjs().Type ? '{}' : defaultJson(field));
}

function defaultJson(field: protobuf.Field): string {
  if (field.resolvedType instanceof protobufjs().Enum) return goJsonString(field.resolvedType.valuesById[0] ?? '0');
  if (longTypes.has(field.type)) return '"0"';
  if (field.type === 'string' || field.type === 'bytes') return '""';
  if (field.type === 'bool') return 'false';
  return '0';
}

/** The JSON jsonpb writes for a decoded protobufjs message. */
export function writeMessage(type: protobuf.Type, message: protobuf.Message | Record<string, unknown>): string {
  const record = message as Record<string, unknown>;
  const parts: string[] = [];
  for (const field of type.fieldsArray) {
    const value = record[field.name];
    let json: string | undefined;
    if (field.partOf) {
      // A set oneof member is written even when it holds its default value.
      if (record[field.partOf.name] !== field.name || value === undefined || value === null) continue;
      json = writeScalar(field, value) ?? defaultJson(field);
    } else if (field.repeated) {
      const items = value as unknown[] | undefined;
      if (items === undefined || items.length === 0) continue;
      json = `[${items.map((item) => writeElement(field, item)).join(',')}]`;
    } else {
      json = writeScalar(field, value);
    }
    if (json !== undefined) parts.push(`${goJsonString(field.name)}:${json}`);
  }
  return `{${parts.join(',')}}`;
}

/** Decodes a response's protobuf bytes and writes them as the gateway's JSON. */
export function decodeToJson(type: protobuf.Type, bytes: Uint8Array): string {
  return writeMessage(type, type.decode(bytes));
}
