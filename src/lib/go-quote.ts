/**
 * Go's strconv.Quote (fmt's %q), which etcd's and etcdctl's messages use for names, URLs and keys;
 * the server's configuration checks and etcdctl's output both quote with it.
 */

/** Go's strconv.Quote (and fmt's %q) over raw bytes: invalid UTF-8 becomes \xNN. */
export function goQuote(bytes: Uint8Array): string {
  let out = '"';
  let index = 0;
  while (index < bytes.length) {
    const decoded = decodeRune(bytes, index);
    if (decoded === undefined) {
      out += `\\x${hex2(bytes[index] ?? 0)}`;
      index += 1;
      continue;
    }
    out += quoteRune(decoded.rune);
    index += decoded.size;
  }
  return out + '"';
}

const shortEscapes: Record<number, string> = {
  0x07: '\\a',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x0b: '\\v',
  0x22: '\\"',
  0x5c: '\\\\',
};

function quoteRune(rune: number): string {
  const short = shortEscapes[rune];
  if (short !== undefined) return short;
  if (isGoPrintable(rune)) return String.fromCodePoint(rune);
  if (rune < 0x80) return `\\x${hex2(rune)}`;
  if (rune < 0x10000) return `\\u${rune.toString(16).padStart(4, '0')}`;
  return `\\U${rune.toString(16).padStart(8, '0')}`;
}

/** Made on first use: V8 parses a pattern of Unicode classes as the literal is first evaluated, about a millisecond that a command printing no quoted text need not spend. */
let printableClasses: RegExp | undefined;

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isGoPrintable(rune: number): boolean {
  if (rune === 0x20) return true;
  printableClasses ??= /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
  return printableClasses.test(String.fromCodePoint(rune));
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, '0');
}

/** Decodes one UTF-8 rune the way Go does; undefined marks an invalid byte. */
function decodeRune(bytes: Uint8Array, index: number): { rune: number; size: number } | undefined {
  const first = bytes[index] ?? 0;
  if (first < 0x80) return { rune: first, size: 1 };
  const size = first >= 0xf0 && first < 0xf5 ? 4 : first >= 0xe0 ? (first < 0xf0 ? 3 : 0) : first >= 0xc2 ? 2 : 0;
  if (size === 0 || index + size > bytes.length) return undefined;
  let rune = first & (0xff >> (size + 1));
  for (let offset = 1; offset < size; offset++) {
    const next = bytes[index + offset] ?? 0;
    if ((next & 0xc0) !== 0x80) return undefined;
    rune = (rune << 6) | (next & 0x3f);
  }
  const minimum = [0, 0, 0x80, 0x800, 0x10000][size] ?? 0;
  if (rune < minimum || rune > 0x10ffff || (rune >= 0xd800 && rune <= 0xdfff)) return undefined;
  return { rune, size };
}

/** Go's %q over a string (its UTF-8 bytes). */
export function goQuoteString(text: string): string {
  return goQuote(Buffer.from(text));
}

/** Go's %q over a []string: `["a" "b"]`. */
export function goQuoteList(texts: readonly string[]): string {
  return `[${texts.map(goQuoteString).join(' ')}]`;
}
