/**
 * etcdctl's output formats (-w simple|json|fields|table|protobuf) for the commands tsetcdctl
 * implements. Keys and values are raw bytes, so lines are written as Buffers, never re-encoded.
 */
import { join } from 'node:path';
import type protobuf from 'protobufjs';
import { packageRoot } from '../src/lib/paths.js';
import { protobufJs } from './lazy-modules.js';
import type { Message } from './client.js';
import { goDurationString } from '../src/lib/go-duration.js';
import { goJsonString, goQuote, humanizeBytes } from './go-format.js';
import { ExitCode, exitWithError, type Output } from './output.js';
import type { EtcdDbStatus } from '../src/snap/etcd-db.js';

export type OutputFormat = 'simple' | 'json' | 'fields' | 'table' | 'protobuf';

export interface EndpointHealth {
  readonly endpoint: string;
  readonly health: boolean;
  readonly tookNs: number | undefined;
  readonly error: string;
}

export interface EndpointStatus {
  readonly endpoint: string;
  readonly status: Message;
}

/** Options that change how keys and values print. */
export interface PrintOptions {
  readonly format: OutputFormat;
  readonly hex: boolean;
  readonly valueOnly: boolean;
  /** Encodes a KV response for `-w protobuf`. */
  readonly serialize: (method: string, response: Message) => Buffer;
}

/** Prints one response the way etcdctl's display for `options.format` does. */
export class Printer {
  constructor(
    private readonly output: Output,
    private readonly options: PrintOptions,
  ) {}

  put(response: Message): void {
    this.dispatch(
      'Put',
      'PutResponse',
      response,
      () => this.simplePut(response),
      () => this.fieldsPut(response),
    );
  }

  get(response: Message): void {
    this.dispatch(
      'Range',
      'RangeResponse',
      response,
      () => this.simpleGet(response),
      () => this.fieldsGet(response),
    );
  }

  del(response: Message): void {
    this.dispatch(
      'DeleteRange',
      'DeleteRangeResponse',
      response,
      () => this.simpleDel(response),
      () => this.fieldsDel(response),
    );
  }

  txn(response: Message): void {
    this.dispatch(
      'Txn',
      'TxnResponse',
      response,
      () => this.simpleTxn(response),
      () => this.fieldsTxn(response),
    );
  }

  /** One clientv3 WatchResponse as etcdctl's display.Watch prints it. */
  watch(response: Message): void {
    const events = (response.events ?? []) as Message[];
    switch (this.options.format) {
      case 'simple':
        for (const event of events) {
          this.line(enumName('mvccpb.Event.EventType', event.type as number));
          if (event.prev_kv) this.printKv(event.prev_kv);
          this.printKv(event.kv);
        }
        return;
      case 'fields':
        this.fieldsHeader(response.header);
        for (const event of events) {
          this.line(`"Type" : ${enumName('mvccpb.Event.EventType', event.type as number)}`);
          if (event.prev_kv) this.fieldsKv('Prev', event.prev_kv);
          this.fieldsKv('', event.kv);
        }
        return;
      case 'json': {
        // clientv3's WatchResponse struct, marshalled as Go does: Go field names; only the response
        // closing a refused watch has a nil event list (null), every other one a made slice.
        const list =
          response.events === null
            ? 'null'
            : `[${events.map((event) => messageJson('mvccpb.Event', event)).join(',')}]`;
        return this.line(
          `{"Header":${messageJson('etcdserverpb.ResponseHeader', response.header ?? {})},"Events":${list},"CompactRevision":${response.compact_revision},"Canceled":${response.canceled},"Created":${response.created}}`,
        );
      }
      case 'protobuf': {
        const { header, compact_revision, canceled, created } = response;
        return this.output.out(
          encodeMessage('etcdserverpb.WatchResponse', { header, events, compact_revision, canceled, created }),
        );
      }
      case 'table':
        this.unsupported();
    }
  }

  endpointHealth(list: readonly EndpointHealth[]): void {
    const took = (item: EndpointHealth): string => (item.tookNs === undefined ? '' : goDurationString(item.tookNs));
    switch (this.options.format) {
      case 'simple':
        for (const item of list) {
          if (item.error === '')
            this.output.err(`${item.endpoint} is healthy: successfully committed proposal: took = ${took(item)}\n`);
          else this.output.err(`${item.endpoint} is unhealthy: failed to commit proposal: ${item.error}\n`);
        }
        return;
      case 'json':
        this.line(`[${list.map((item) => healthJson(item, took(item))).join(',')}]`);
        return;
      case 'fields':
        for (const item of list) {
          this.line(
            `"Endpoint" : ${goQuote(Buffer.from(item.endpoint))}\n"Health" : ${item.health}\n"Took" : ${took(item)}\n"Error" : ${item.error}\n`,
          );
        }
        return;
      case 'table':
        this.output.out(
          renderTable(
            ['endpoint', 'health', 'took', 'error'],
            list.map((item) => [item.endpoint, String(item.health), took(item), item.error]),
          ),
        );
        return;
      case 'protobuf':
        this.unsupported();
    }
  }

  endpointStatus(list: readonly EndpointStatus[]): void {
    switch (this.options.format) {
      case 'simple':
        for (const row of list.map(statusRow)) this.line(row.join(', '));
        return;
      case 'json':
        this.line(
          `[${list.map((item) => `{"Endpoint":${goJsonString(item.endpoint)},"Status":${messageJson('etcdserverpb.StatusResponse', item.status)}}`).join(',')}]`,
        );
        return;
      case 'fields':
        for (const item of list) this.fieldsStatus(item);
        return;
      case 'table': {
        const header = [
          'endpoint',
          'ID',
          'version',
          'db size',
          'is leader',
          'is learner',
          'raft term',
          'raft index',
          'raft applied index',
          'errors',
        ];
        this.output.out(renderTable(header, list.map(statusRow)));
        return;
      }
      case 'protobuf':
        this.unsupported();
    }
  }

  private dispatch(method: string, typeName: string, response: Message, simple: () => void, fields: () => void): void {
    switch (this.options.format) {
      case 'simple':
        return simple();
      case 'fields':
        return fields();
      case 'json':
        return this.line(messageJson(`etcdserverpb.${typeName}`, response));
      case 'protobuf':
        return this.output.out(
          this.options.serialize(method, withoutDefaultFields(`etcdserverpb.${typeName}`, response)),
        );
      case 'table':
        this.unsupported();
    }
  }

  /** `snapshot status`: hash, revision, total keys, total size. */
  dbStatus(status: EtcdDbStatus): void {
    const row = [
      status.hash.toString(16),
      String(status.revision),
      String(status.totalKey),
      humanizeBytes(status.totalSize),
    ];
    switch (this.options.format) {
      case 'simple':
        return this.line(row.join(', '));
      case 'json':
        return this.line(
          `{"hash":${status.hash},"revision":${status.revision},"totalKey":${status.totalKey},"totalSize":${status.totalSize}}`,
        );
      case 'fields':
        this.line(`"Hash" : ${status.hash}`);
        this.line(`"Revision" : ${status.revision}`);
        this.line(`"Keys" : ${status.totalKey}`);
        return this.line(`"Size" : ${status.totalSize}`);
      case 'table':
        return this.output.out(renderTable(['hash', 'revision', 'total keys', 'total size'], [row]));
      case 'protobuf':
        this.unsupported();
    }
  }

  private unsupported(): never {
    exitWithError(this.output, ExitCode.badFeature, `${this.options.format} not supported as output format`);
  }

  private line(text: string): void {
    this.output.out(`${text}\n`);
  }

  private printKv(kv: Message): void {
    const key = kv.key as Buffer;
    const value = kv.value as Buffer;
    if (!this.options.valueOnly)
      this.output.out(Buffer.concat([this.options.hex ? hexBytes(key) : key, Buffer.from('\n')]));
    this.output.out(Buffer.concat([this.options.hex ? hexBytes(value) : value, Buffer.from('\n')]));
  }

  private simplePut(response: Message): void {
    this.line('OK');
    if (response.prev_kv) this.printKv(response.prev_kv);
  }

  private simpleGet(response: Message): void {
    for (const kv of response.kvs as Message[]) this.printKv(kv);
  }

  private simpleDel(response: Message): void {
    this.line(String(response.deleted));
    for (const kv of response.prev_kvs as Message[]) this.printKv(kv);
  }

  private simpleTxn(response: Message): void {
    this.line(response.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of response.responses as Message[]) {
      this.line('');
      if (op.response === 'response_delete_range') this.simpleDel(op.response_delete_range);
      else if (op.response === 'response_put') this.simplePut(op.response_put);
      else if (op.response === 'response_range') this.simpleGet(op.response_range);
      else this.line(`unexpected response ${JSON.stringify(op)}`);
    }
  }

  private fieldsHeader(header: Message | null): void {
    this.output.out(fieldsHeaderText(header ?? { cluster_id: '0', member_id: '0', revision: '0', raft_term: '0' }));
  }

  private fieldsKv(prefix: string, kv: Message): void {
    this.line(`"${prefix}Key" : ${goQuote(kv.key)}`);
    this.line(
      `"${prefix}CreateRevision" : ${kv.create_revision}\n"${prefix}ModRevision" : ${kv.mod_revision}\n"${prefix}Version" : ${kv.version}`,
    );
    this.line(`"${prefix}Value" : ${goQuote(kv.value)}\n"${prefix}Lease" : ${kv.lease}`);
  }

  private fieldsPut(response: Message): void {
    this.fieldsHeader(response.header);
    if (response.prev_kv) this.fieldsKv('Prev', response.prev_kv);
  }

  private fieldsGet(response: Message): void {
    this.fieldsHeader(response.header);
    for (const kv of response.kvs as Message[]) this.fieldsKv('', kv);
    this.line(`"More" : ${response.more}\n"Count" : ${response.count}`);
  }

  private fieldsDel(response: Message): void {
    this.fieldsHeader(response.header);
    this.line(`"Deleted" : ${response.deleted}`);
    for (const kv of response.prev_kvs as Message[]) this.fieldsKv('Prev', kv);
  }

  private fieldsTxn(response: Message): void {
    this.fieldsHeader(response.header);
    this.line(`"Succeeded" : ${response.succeeded}`);
    for (const op of response.responses as Message[]) {
      if (op.response === 'response_delete_range') this.fieldsDel(op.response_delete_range);
      else if (op.response === 'response_put') this.fieldsPut(op.response_put);
      else if (op.response === 'response_range') this.fieldsGet(op.response_range);
      else this.line(`"Unknown" : ${goQuote(Buffer.from(JSON.stringify(op)))}`);
    }
  }

  private fieldsStatus(item: EndpointStatus): void {
    const status = item.status;
    this.fieldsHeader(status.header);
    this.line(
      `"Version" : ${goQuote(Buffer.from(status.version as string))}\n"DBSize" : ${status.dbSize}\n"Leader" : ${status.leader}`,
    );
    this.line(`"IsLearner" : ${status.isLearner}\n"RaftIndex" : ${status.raftIndex}\n"RaftTerm" : ${status.raftTerm}`);
    this.line(`"RaftAppliedIndex" : ${status.raftAppliedIndex}\n"Errors" : [${(status.errors as string[]).join(' ')}]`);
    this.line(`"Endpoint" : ${goQuote(Buffer.from(item.endpoint))}\n`);
  }
}

/** The four header lines of etcdctl's fields printer. */
export function fieldsHeaderText(header: Message): string {
  return `"ClusterID" : ${header.cluster_id}\n"MemberID" : ${header.member_id}\n"Revision" : ${header.revision}\n"RaftTerm" : ${header.raft_term}\n`;
}

/** A message in Go's protobuf wire form, as gogo's Marshal writes it (default fields left out). */
export function encodeMessage(typeName: string, value: Message): Buffer {
  const type = typeOf(typeName);
  return Buffer.from(type.encode(type.fromObject(withoutDefaultFields(typeName, value))).finish());
}

/** The name protobuf gives an enum value, as Go's String() prints it. */
export function enumName(enumName: string, value: number): string {
  return reflectionRoot().lookupEnum(enumName).valuesById[value] ?? String(value);
}

/** The number of an enum value by its protobuf name, or undefined when the enum has no such name. */
export function enumValue(enumName: string, name: string): number | undefined {
  const values = reflectionRoot().lookupEnum(enumName).values;
  return Object.hasOwn(values, name) ? values[name] : undefined;
}

/**
 * A message in protobuf's compact text form, as gogo's String() gives it to fmt's %v: every set
 * field as `name:value ` (enums by name, nested messages in angle brackets).
 */
export function messageText(typeName: string, value: Message): string {
  return typeText(typeOf(typeName), value);
}

function typeText(type: protobuf.Type, value: Message): string {
  let out = '';
  for (const field of type.fieldsArray) {
    const fieldValue = value[field.name];
    if (isEmpty(field, fieldValue)) continue;
    const items = field.repeated ? (fieldValue as unknown[]) : [fieldValue];
    for (const item of items) {
      const nested = field.resolvedType;
      if (nested instanceof protobufJs().Type) out += `${field.name}:<${typeText(nested, item as Message)}> `;
      else if (nested instanceof protobufJs().Enum)
        out += `${field.name}:${nested.valuesById[item as number] ?? String(item)} `;
      else if (field.type === 'bytes' || field.type === 'string')
        out += `${field.name}:${goQuote(Buffer.from(item as Buffer | string))} `;
      else out += `${field.name}:${String(item)} `;
    }
  }
  return out;
}

/** etcdctl's --hex form: every byte as \xNN. */
function hexBytes(bytes: Buffer): Buffer {
  return Buffer.from([...bytes].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join(''));
}

function healthJson(item: EndpointHealth, took: string): string {
  const error = item.error === '' ? '' : `,"error":${goJsonString(item.error)}`;
  return `{"endpoint":${goJsonString(item.endpoint)},"health":${item.health},"took":${goJsonString(took)}${error}}`;
}

function statusRow(item: EndpointStatus): string[] {
  const status = item.status;
  const memberId = (status.header?.member_id as string | undefined) ?? '0';
  return [
    item.endpoint,
    BigInt(memberId).toString(16),
    status.version as string,
    humanizeBytes(Number(status.dbSize)),
    String(status.leader === memberId),
    String(status.isLearner),
    String(status.raftTerm),
    String(status.raftIndex),
    String(status.raftAppliedIndex),
    (status.errors as string[]).join(', '),
  ];
}

/** olekukonko/tablewriter's default look: upper-case centred header, right-aligned cells. */
export function renderTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => [...(row[column] ?? '')].length)),
  );
  const border = `+${widths.map((width) => '-'.repeat(width + 2)).join('+')}+\n`;
  const centre = (text: string, width: number): string => {
    const left = Math.floor((width - text.length) / 2);
    return ' '.repeat(left) + text + ' '.repeat(width - text.length - left);
  };
  const headerLine = `| ${header.map((title, column) => centre(title.toUpperCase(), widths[column] ?? 0)).join(' | ')} |\n`;
  const rowLines = rows.map(
    (row) => `| ${row.map((cell, column) => cell.padStart(widths[column] ?? 0)).join(' | ')} |\n`,
  );
  return border + headerLine + border + rowLines.join('') + border;
}

/** Our protos as protobufjs reflection, for field order, oneofs and types; loaded on first use. */
let cachedRoot: protobuf.Root | undefined;

function reflectionRoot(): protobuf.Root {
  if (cachedRoot !== undefined) return cachedRoot;
  const root = new (protobufJs().Root)();
  const protoDir = join(packageRoot(), 'src', 'api', 'proto');
  root.resolvePath = (_origin, target) => join(protoDir, target);
  root.loadSync('etcdserverpb/rpc.proto', { keepCase: true });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

function typeOf(typeName: string): protobuf.Type {
  return reflectionRoot().lookupType(typeName);
}

/** The oneof a field belongs to, ignoring the synthetic ones proto3 `optional` creates. */
function realOneof(field: protobuf.Field): protobuf.OneOf | null {
  const oneof = field.partOf;
  return oneof !== null && !(oneof.fieldsArray.length === 1 && oneof.name.startsWith('_')) ? oneof : null;
}

/** A message as Go's encoding/json writes etcd's generated structs (omitempty, proto field names). */
export function messageJson(typeName: string, value: Message): string {
  return typeJson(typeOf(typeName), value);
}

function typeJson(type: protobuf.Type, value: Message): string {
  const parts: string[] = [];
  const doneOneofs = new Set<protobuf.OneOf>();
  for (const field of type.fieldsArray) {
    const oneof = realOneof(field);
    if (oneof !== null) {
      if (doneOneofs.has(oneof)) continue;
      doneOneofs.add(oneof);
      parts.push(oneofJson(oneof, value));
      continue;
    }
    const fieldValue = value[field.name];
    if (isEmpty(field, fieldValue)) continue;
    const encoded = field.repeated
      ? `[${(fieldValue as unknown[]).map((item) => valueJson(field, item)).join(',')}]`
      : valueJson(field, fieldValue);
    parts.push(`${goJsonString(field.name)}:${encoded}`);
  }
  return `{${parts.join(',')}}`;
}

/** Go names a oneof after its Go field (CamelCase) and wraps the set member in its own struct. */
function oneofJson(oneof: protobuf.OneOf, value: Message): string {
  const chosen = value[oneof.name] as string | undefined;
  const field = oneof.fieldsArray.find((candidate) => candidate.name === chosen);
  if (field === undefined) return `${goJsonString(camel(oneof.name))}:null`;
  return `${goJsonString(camel(oneof.name))}:{${goJsonString(camel(field.name))}:${valueJson(field, value[field.name])}}`;
}

function camel(name: string): string {
  return name.replace(/(^|_)([a-z])/g, (_match, _sep: string, letter: string) => letter.toUpperCase());
}

function isEmpty(field: protobuf.Field, value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (field.repeated) return (value as unknown[]).length === 0;
  if (Buffer.isBuffer(value)) return value.length === 0;
  return value === '' || value === '0' || value === 0 || value === false;
}

function valueJson(field: protobuf.Field, value: unknown): string {
  if (field.resolvedType instanceof protobufJs().Type)
    return value === null ? 'null' : typeJson(field.resolvedType, value as Message);
  if (field.type === 'bytes') return `"${(value as Buffer).toString('base64')}"`;
  if (field.type === 'string') return goJsonString(value as string);
  return String(value);
}

/**
 * A copy without fields at their default, so protobufjs encodes only what Go's marshaller would
 * (the decoder filled every default in). Oneof members stay: Go writes them even when zero.
 */
export function withoutDefaultFields(typeName: string, value: Message): Message {
  return pruneType(typeOf(typeName), value);
}

function pruneType(type: protobuf.Type, value: Message): Message {
  const copy: Message = {};
  for (const field of type.fieldsArray) {
    const fieldValue = value[field.name];
    const skip =
      realOneof(field) !== null ? fieldValue === null || fieldValue === undefined : isEmpty(field, fieldValue);
    if (skip) continue;
    const nested = field.resolvedType;
    if (!(nested instanceof protobufJs().Type)) copy[field.name] = fieldValue;
    else if (field.repeated) copy[field.name] = (fieldValue as Message[]).map((item) => pruneType(nested, item));
    else copy[field.name] = pruneType(nested, fieldValue as Message);
  }
  return copy;
}
