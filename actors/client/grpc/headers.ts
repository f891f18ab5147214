/**
 * The header blocks a gRPC server sends, HPACK-encoded (RFC 7541) for one connection. The two
 * fields every answer repeats, content-type and a zero grpc-status, enter the client's dynamic
 * table the first time they are sent and go as one-byte indexes after that, as grpc-go's encoder
 * has them; every other field is a literal the client does not keep.
 */
import { defaultHeaderTableBytes } from '../../../src/http2/hpack.js';

/** ':status: 200' is entry 8 of the static table. */
const status200 = 0x88;
/** The static table's index of the name content-type. */
const contentTypeNameIndex = 31;
/** The static table's index of the name :status. */
const statusNameIndex = 8;
const staticEntries = 61;

type Indexed = 'contentType' | 'statusOk';

export class GrpcHeaderEncoder {
  /** Fields added to the client's table, oldest first; each is added once. */
  private readonly added: Indexed[] = [];
  private indexing = true;
  /** A size update the next block must start with (RFC 7541, 4.2), or -1. */
  private pendingSizeUpdate = -1;
  private cachedHeaders: Buffer | undefined;
  private cachedTrailers: Buffer | undefined;

  /** The client's SETTINGS_HEADER_TABLE_SIZE: below the default, we stop indexing and empty our part. */
  peerTableBytes(bytes: number): void {
    if (bytes >= defaultHeaderTableBytes || !this.indexing) return;
    this.indexing = false;
    this.pendingSizeUpdate = 0;
    this.added.length = 0;
    this.cachedHeaders = undefined;
    this.cachedTrailers = undefined;
  }

  /** ':status: 200' and 'content-type: application/grpc'. */
  responseHeaders(): Buffer {
    if (this.cachedHeaders !== undefined && this.pendingSizeUpdate < 0) return this.cachedHeaders;
    const bytes: number[] = this.sizeUpdate();
    bytes.push(status200);
    const indexedBefore = this.added.length;
    this.contentType(bytes);
    const block = Buffer.from(bytes);
    // Only a block of indexes may be sent again; one that added an entry must not add it twice.
    if (this.indexing && indexedBefore === 2) this.cachedHeaders = block;
    return block;
  }

  /** 'grpc-status: 0'. */
  okTrailers(): Buffer {
    if (this.cachedTrailers !== undefined && this.pendingSizeUpdate < 0) return this.cachedTrailers;
    const bytes: number[] = this.sizeUpdate();
    const index = this.indexOf('statusOk');
    if (index > 0) bytes.push(0x80 | index);
    else if (this.indexing) {
      literal(bytes, 0x40, 6, 0, 'grpc-status', '0');
      this.added.push('statusOk');
    } else literal(bytes, 0x00, 4, 0, 'grpc-status', '0');
    const block = Buffer.from(bytes);
    if (index > 0 && this.added.length === 2) this.cachedTrailers = block;
    return block;
  }

  /** Trailers carrying a status and its message, after a response that sent headers. */
  statusTrailers(code: number, message: string): Buffer {
    if (code === 0 && message === '') return this.okTrailers();
    const bytes: number[] = this.sizeUpdate();
    literal(bytes, 0x00, 4, 0, 'grpc-status', String(code));
    if (message !== '') literal(bytes, 0x00, 4, 0, 'grpc-message', percentEncode(message));
    return Buffer.from(bytes);
  }

  /** A trailers-only response: the HTTP status, content-type and the gRPC status in one block. */
  trailersOnly(code: number, message: string, httpStatus = 200): Buffer {
    const bytes: number[] = this.sizeUpdate();
    if (httpStatus === 200) bytes.push(status200);
    else literal(bytes, 0x00, 4, statusNameIndex, '', String(httpStatus));
    this.contentType(bytes);
    literal(bytes, 0x00, 4, 0, 'grpc-status', String(code));
    if (message !== '') literal(bytes, 0x00, 4, 0, 'grpc-message', percentEncode(message));
    return Buffer.from(bytes);
  }

  private contentType(bytes: number[]): void {
    const index = this.indexOf('contentType');
    if (index > 0) bytes.push(0x80 | index);
    else if (this.indexing) {
      literal(bytes, 0x40, 6, contentTypeNameIndex, '', 'application/grpc');
      this.added.push('contentType');
    } else literal(bytes, 0x00, 4, contentTypeNameIndex, '', 'application/grpc');
  }

  /** The field's index in the client's table, or 0 when it is not there. */
  private indexOf(field: Indexed): number {
    const position = this.added.indexOf(field);
    return position < 0 ? 0 : staticEntries + this.added.length - position;
  }

  private sizeUpdate(): number[] {
    if (this.pendingSizeUpdate < 0) return [];
    const bytes: number[] = [];
    integer(bytes, 0x20, 5, this.pendingSizeUpdate);
    this.pendingSizeUpdate = -1;
    return bytes;
  }
}

/** An HPACK integer with an N-bit prefix after `pattern`'s high bits (RFC 7541, 5.1). */
function integer(bytes: number[], pattern: number, prefixBits: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    bytes.push(pattern | value);
    return;
  }
  bytes.push(pattern | mask);
  let rest = value - mask;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
}

function rawString(bytes: number[], text: string): void {
  integer(bytes, 0x00, 7, text.length);
  for (let i = 0; i < text.length; i++) bytes.push(text.charCodeAt(i) & 0xff);
}

/** A literal field: with incremental indexing (0x40, 6-bit index) or without (0x00, 4-bit). */
function literal(
  bytes: number[],
  pattern: number,
  prefixBits: number,
  nameIndex: number,
  name: string,
  value: string,
): void {
  integer(bytes, pattern, prefixBits, nameIndex);
  if (nameIndex === 0) rawString(bytes, name);
  rawString(bytes, value);
}

/** gRPC's grpc-message encoding: bytes outside printable ASCII, and '%', as %XX of their UTF-8. */
export function percentEncode(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let encoded = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}
