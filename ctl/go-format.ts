/**
 * Go formatting and parsing rules etcdctl's output depends on: strconv quoting and integer
 * parsing, time.ParseDuration's error texts, go-humanize byte sizes and encoding/json string
 * escaping (durations themselves are read and printed by src/lib/go-duration.ts, shared with the
 * server's flags). etcdctl users script against these byte for byte, so they are reproduced here exactly.
 */
import { goDurationErrorText, parseGoDuration } from '../src/lib/go-duration.js';
import { goQuote } from '../src/lib/go-quote.js';

export { goQuote };

/** Go's strconv.Unquote for a double-quoted or back-quoted literal, as bytes; undefined when invalid. */
export function goUnquote(literal: string): Buffer | undefined {
  if (literal.length < 2) return undefined;
  const quote = literal[0];
  if (quote !== literal[literal.length - 1]) return undefined;
  const body = literal.slice(1, -1);
  if (quote === '`') return body.includes('`') ? undefined : Buffer.from(body.replace(/\r/g, ''));
  if (quote !== '"' || body.includes('\n')) return undefined;
  const parts: Buffer[] = [];
  for (let index = 0; index < body.length;) {
    const char = body[index] ?? '';
    if (char === '"') return undefined;
    if (char !== '\\') {
      const codePoint = body.codePointAt(index) ?? 0;
      parts.push(Buffer.from(String.fromCodePoint(codePoint)));
      index += codePoint > 0xffff ? 2 : 1;
      continue;
    }
    const escape = unescapeAt(body, index + 1);
    if (escape === undefined) return undefined;
    parts.push(escape.bytes);
    index = escape.next;
  }
  return Buffer.concat(parts);
}

const simpleUnescapes: Record<string, number> = {
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
  '\\': 0x5c,
  '"': 0x22,
};

function unescapeAt(body: string, index: number): { bytes: Buffer; next: number } | undefined {
  const kind = body[index] ?? '';
  const simple = simpleUnescapes[kind];
  if (simple !== undefined) return { bytes: Buffer.from([simple]), next: index + 1 };
  const widths: Record<string, number> = { x: 2, u: 4, U: 8 };
  const width = widths[kind];
  if (width !== undefined) {
    const digits = body.slice(index + 1, index + 1 + width);
    if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== width) return undefined;
    const value = parseInt(digits, 16);
    // \xNN is one raw byte in Go; \u and \U are code points written as UTF-8.
    if (kind === 'x') return { bytes: Buffer.from([value]), next: index + 1 + width };
    if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return undefined;
    return { bytes: Buffer.from(String.fromCodePoint(value)), next: index + 1 + width };
  }
  const octal = body.slice(index, index + 3);
  if (/^[0-7]{3}$/.test(octal) && parseInt(octal, 8) <= 0xff)
    return { bytes: Buffer.from([parseInt(octal, 8)]), next: index + 3 };
  return undefined;
}

/** Result of a Go strconv parse: the value, or the error text Go would print. */
export type GoParse<T> = { ok: true; value: T } | { ok: false; error: string };

const int64Max = (1n << 63n) - 1n;
const int64Min = -(1n << 63n);

/** Go's strconv.ParseInt(text, base, 64), including base 0 prefixes and underscores. */
export function goParseInt(text: string, base: 0 | 10 | 16): GoParse<bigint> {
  const fail = (why: string): GoParse<bigint> => ({
    ok: false,
    error: `strconv.ParseInt: parsing ${goQuote(Buffer.from(text))}: ${why}`,
  });
  let body = text;
  let negative = false;
  if (body.startsWith('+') || body.startsWith('-')) {
    negative = body.startsWith('-');
    body = body.slice(1);
  }
  let radix: number = base;
  if (base === 0) {
    radix = 10;
    if (/^0[xX]/.test(body)) [radix, body] = [16, body.slice(2)];
    else if (/^0[bB]/.test(body)) [radix, body] = [2, body.slice(2)];
    else if (/^0[oO]/.test(body)) [radix, body] = [8, body.slice(2)];
    else if (body.length > 1 && body.startsWith('0')) [radix, body] = [8, body.slice(1)];
    if (!underscoresValid(text.replace(/^[+-]/, ''))) return fail('invalid syntax');
    body = body.replace(/_/g, '');
  }
  const digits = '0123456789abcdefghijklmnopqrstuvwxyz'.slice(0, radix);
  if (body === '' || [...body.toLowerCase()].some((char) => !digits.includes(char))) return fail('invalid syntax');
  let value = 0n;
  for (const char of body.toLowerCase()) value = value * BigInt(radix) + BigInt(digits.indexOf(char));
  if (negative) value = -value;
  if (value > int64Max || value < int64Min) return fail('value out of range');
  return { ok: true, value };
}

const uint64Max = (1n << 64n) - 1n;

/** Go's strconv.ParseUint(text, 16, 64), as etcdctl reads member IDs: no sign, no prefix. */
export function goParseUint16(text: string): GoParse<bigint> {
  const fail = (why: string): GoParse<bigint> => ({
    ok: false,
    error: `strconv.ParseUint: parsing ${goQuote(Buffer.from(text))}: ${why}`,
  });
  if (!/^[0-9a-fA-F]+$/.test(text)) return fail('invalid syntax');
  const value = BigInt(`0x${text}`);
  return value > uint64Max ? fail('value out of range') : { ok: true, value };
}

/** Go accepts base-0 underscores only between digits (or after a base prefix). */
function underscoresValid(text: string): boolean {
  if (!text.includes('_')) return true;
  return /^(0[xXbBoO]_?)?[0-9a-fA-F]+(_[0-9a-fA-F]+)*$/.test(text) || /^0[0-7]*(_[0-7]+)*$/.test(text);
}

/** Go's strconv.ParseBool. */
export function goParseBool(text: string): GoParse<boolean> {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return { ok: true, value: true };
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return { ok: true, value: false };
  return { ok: false, error: `strconv.ParseBool: parsing ${goQuote(Buffer.from(text))}: invalid syntax` };
}

/** Go's time.ParseDuration, in nanoseconds, with its error texts. */
export function goParseDuration(text: string): GoParse<number> {
  const parsed = parseGoDuration(text);
  if (parsed.ok) return { ok: true, value: parsed.durationNs };
  return { ok: false, error: goDurationErrorText(text, parsed, (part) => goQuote(Buffer.from(part))) };
}

const sizeSuffixes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** go-humanize's Bytes: SI units, one decimal below ten. */
export function humanizeBytes(size: number): string {
  if (size < 10) return `${size} B`;
  const exponent = Math.floor(Math.log(size) / Math.log(1000));
  const suffix = sizeSuffixes[exponent] ?? '?';
  const value = Math.floor((size / 1000 ** exponent) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : goRoundHalfEven(value)} ${suffix}`;
}

/** Go's %.0f rounds halves to even. */
function goRoundHalfEven(value: number): string {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (Math.abs(fraction - 0.5) < 1e-9) return String(floor % 2 === 0 ? floor : floor + 1);
  return String(Math.round(value));
}

/** A string as Go's encoding/json writes it (HTML-safe escapes, \u0008 and \u000c spelled out). */
export function goJsonString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || '<>&\u2028\u2029'.includes(char)) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return out + '"';
}
