/** etcd's protobuf answers as text for comparisons, decoded with our copy of etcd's protos. */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../../src/lib/paths.js';

let protoRoot: protobuf.Root | undefined;

function lookupType(typeName: string): protobuf.Type {
  if (protoRoot === undefined) {
    protoRoot = new protobuf.Root();
    const protoDir = join(packageRoot(), 'src', 'api', 'proto');
    protoRoot.resolvePath = (_origin, target) => join(protoDir, target);
    protoRoot.loadSync('etcdserverpb/rpc.proto', { keepCase: true });
  }
  return protoRoot.lookupType(typeName);
}

/** One message as JSON (64-bit numbers and bytes as strings), for comparing field by field. */
export function protobufText(typeName: string, bytes: Buffer): string {
  const type = lookupType(typeName);
  return JSON.stringify(type.toObject(type.decode(bytes), { longs: String, bytes: String }));
}

/** Reads a varint at `at`; returns its value and the offset after it. */
function readVarint(bytes: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let offset = at; offset < bytes.length; offset++) {
    const byte = bytes[offset] as number;
    value += (byte & 0x7f) * scale;
    scale *= 0x80;
    if ((byte & 0x80) === 0) return [value, offset + 1];
  }
  throw new Error(`expected a varint ending before byte ${bytes.length}, from ${at}`);
}

/**
 * Splits messages of one type printed back to back (etcdctl's `watch -w protobuf` prints one per
 * response, unframed). An encoder writes fields in field-number order, so a field numbered lower
 * than the one before it, or a non-repeated field again, starts the next message.
 */
export function splitMessages(typeName: string, bytes: Buffer): Buffer[] {
  const type = lookupType(typeName);
  const messages: Buffer[] = [];
  let start = 0;
  let previousField = 0;
  for (let at = 0; at < bytes.length;) {
    const [tag, afterTag] = readVarint(bytes, at);
    const fieldNumber = Math.floor(tag / 8);
    const repeated = type.fieldsById[fieldNumber]?.repeated ?? false;
    if (at > start && (fieldNumber < previousField || (fieldNumber === previousField && !repeated))) {
      messages.push(bytes.subarray(start, at));
      start = at;
    }
    previousField = fieldNumber;
    const wireType = tag % 8;
    if (wireType === 0) at = readVarint(bytes, afterTag)[1];
    else if (wireType === 1) at = afterTag + 8;
    else if (wireType === 5) at = afterTag + 4;
    else if (wireType === 2) {
      const [length, afterLength] = readVarint(bytes, afterTag);
      at = afterLength + length;
    } else throw new Error(`expected wire type 0, 1, 2 or 5, saw ${wireType} at byte ${at}`);
  }
  if (start < bytes.length) messages.push(bytes.subarray(start));
  return messages;
}

/** A message's bytes after its first field (a watch response's header, which carries the member's IDs). */
export function afterFirstField(bytes: Buffer): Buffer {
  const [tag, afterTag] = readVarint(bytes, 0);
  if (tag % 8 !== 2) throw new Error(`expected a length-delimited first field, saw wire type ${tag % 8}`);
  const [length, afterLength] = readVarint(bytes, afterTag);
  return bytes.subarray(afterLength + length);
}
