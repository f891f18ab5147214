/**
 * etcd 3.4's v2 store as its replay needs it: a tree of directories and values, each node with the
 * store index that created it and last modified it, and an expiry time for TTL nodes. Every
 * successful write (and every expiry) advances the store's index by one; a failed write changes
 * nothing. Paths are cleaned and rooted as etcd cleans them, and "/" cannot be written. Times are
 * Unix nanoseconds as bigints; undefined is etcd's "permanent".
 */

/** One node of the tree: a directory when `children` is set, a value otherwise. */
export interface V2Node {
  path: string;
  createdIndex: number;
  modifiedIndex: number;
  expireNs: bigint | undefined;
  value: string;
  children: Map<string, V2Node> | undefined;
  parent: V2Node | undefined;
}

/** A write the store refused (etcd's v2 error); replay ignores these, as etcd's applier does. */
export class V2StoreError extends Error {}

/** Expiry times before 2000-01-01 UTC mean permanent, as in etcd. */
const minExpireNs = 946_684_800n * 1_000_000_000n;

/** etcd's path.Clean(path.Join("/", p)). */
export function cleanV2Path(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** The v2 store's tree and index. */
export class V2Store {
  currentIndex = 0;
  root: V2Node = V2Store.node('/', 0, undefined, undefined, new Map());
  /** TTL nodes in the order they were given their expiry; expiry takes the earliest first. */
  private readonly ttlNodes = new Set<V2Node>();

  private static node(
    path: string,
    index: number,
    parent: V2Node | undefined,
    expireNs: bigint | undefined,
    children: Map<string, V2Node> | undefined,
    value = '',
  ): V2Node {
    return { path, createdIndex: index, modifiedIndex: index, expireNs, value, children, parent };
  }

  /** The node at `path`, or undefined when it (or a directory on the way) is missing. */
  get(path: string): V2Node | undefined {
    try {
      return this.lookup(path);
    } catch {
      return undefined;
    }
  }

  private lookup(path: string): V2Node {
    let node = this.root;
    for (const name of cleanV2Path(path).split('/').slice(1)) {
      if (name === '') break;
      if (node.children === undefined) throw new V2StoreError(`not a directory: ${node.path}`);
      const child = node.children.get(name);
      if (child === undefined) throw new V2StoreError(`key not found: ${joinPath(node.path, name)}`);
      node = child;
    }
    return node;
  }

  private writable(path: string): string {
    const cleaned = cleanV2Path(path);
    if (cleaned === '/') throw new V2StoreError('the root is read only');
    return cleaned;
  }

  /** etcd's Set: creates or replaces a value (or creates a directory). */
  set(path: string, dir: boolean, value: string, expireNs: bigint | undefined, refresh: boolean): void {
    let existing: V2Node | undefined;
    try {
      existing = this.lookup(path);
    } catch (error) {
      if (!(error as Error).message.startsWith('key not found')) throw error;
    }
    if (refresh) {
      if (existing === undefined) throw new V2StoreError(`key not found: ${path}`);
      value = existing.value;
    }
    this.create(path, dir, value, false, true, expireNs);
  }

  /** etcd's internalCreate: `unique` appends the next index as a name, `replace` overwrites a value. */
  create(path: string, dir: boolean, value: string, unique: boolean, replace: boolean, expireNs?: bigint): void {
    const nextIndex = this.currentIndex + 1;
    if (unique) path += `/${String(nextIndex).padStart(20, '0')}`;
    const nodePath = this.writable(path);
    if (expireNs !== undefined && expireNs < minExpireNs) expireNs = undefined;
    const parentPath = nodePath.slice(0, nodePath.lastIndexOf('/'));
    let parent = this.root;
    for (const name of parentPath.split('/').slice(1)) {
      const child = parent.children!.get(name);
      if (child === undefined) {
        const created = V2Store.node(joinPath(parent.path, name), nextIndex, parent, undefined, new Map());
        parent.children!.set(name, created);
        parent = created;
      } else if (child.children === undefined) throw new V2StoreError(`not a directory: ${child.path}`);
      else parent = child;
    }
    const name = baseName(nodePath);
    const existing = parent.children!.get(name);
    if (existing !== undefined) {
      if (!replace) throw new V2StoreError(`key exists: ${nodePath}`);
      if (existing.children !== undefined) throw new V2StoreError(`not a file: ${nodePath}`);
      this.remove(existing, false, false);
    }
    const node = V2Store.node(nodePath, nextIndex, parent, expireNs, dir ? new Map() : undefined, dir ? '' : value);
    parent.children!.set(name, node);
    if (expireNs !== undefined) this.ttlNodes.add(node);
    this.currentIndex = nextIndex;
  }

  /** etcd's Update: a new value and expiry for an existing node. */
  update(path: string, value: string, expireNs: bigint | undefined, refresh: boolean): void {
    const node = this.lookup(this.writable(path));
    if (node.children !== undefined && value !== '') throw new V2StoreError(`not a file: ${node.path}`);
    if (refresh) value = node.value;
    this.currentIndex++;
    node.value = value;
    node.modifiedIndex = this.currentIndex;
    this.updateExpiry(node, expireNs);
  }

  /** etcd's CompareAndSwap. */
  compareAndSwap(
    path: string,
    prevValue: string,
    prevIndex: number,
    value: string,
    expireNs: bigint | undefined,
    refresh: boolean,
  ): void {
    const node = this.comparedValue(this.writable(path), prevValue, prevIndex);
    if (refresh) value = node.value;
    this.currentIndex++;
    node.value = value;
    node.modifiedIndex = this.currentIndex;
    this.updateExpiry(node, expireNs);
  }

  /** etcd's Delete; `recursive` implies `dir`. */
  delete(path: string, dir: boolean, recursive: boolean): void {
    const node = this.lookup(this.writable(path));
    this.remove(node, dir || recursive, recursive);
    this.currentIndex++;
  }

  /** etcd's CompareAndDelete. */
  compareAndDelete(path: string, prevValue: string, prevIndex: number): void {
    const node = this.comparedValue(cleanV2Path(path), prevValue, prevIndex);
    this.currentIndex++;
    this.remove(node, false, false);
  }

  /** etcd's DeleteExpiredKeys: every node expired at `cutoffNs` goes, earliest first, one index each. */
  deleteExpired(cutoffNs: bigint): void {
    const expired = [...this.ttlNodes].filter((node) => node.expireNs! <= cutoffNs);
    expired.sort((a, b) => (a.expireNs! < b.expireNs! ? -1 : a.expireNs! > b.expireNs! ? 1 : 0));
    for (const node of expired) {
      if (!this.ttlNodes.has(node)) continue;
      this.currentIndex++;
      this.ttlNodes.delete(node);
      this.remove(node, true, true);
    }
  }

  private comparedValue(path: string, prevValue: string, prevIndex: number): V2Node {
    const node = this.lookup(path);
    if (node.children !== undefined) throw new V2StoreError(`not a file: ${path}`);
    const indexMatch = prevIndex === 0 || node.modifiedIndex === prevIndex;
    const valueMatch = prevValue === '' || node.value === prevValue;
    if (!indexMatch || !valueMatch) throw new V2StoreError(`compare failed: ${path}`);
    return node;
  }

  private updateExpiry(node: V2Node, expireNs: bigint | undefined): void {
    node.expireNs = expireNs;
    if (expireNs === undefined) this.ttlNodes.delete(node);
    else {
      // A new expiry moves the node to the end of equal times, as a heap update would place it anew.
      this.ttlNodes.delete(node);
      this.ttlNodes.add(node);
    }
  }

  private remove(node: V2Node, dir: boolean, recursive: boolean): void {
    if (node.children !== undefined) {
      if (!dir) throw new V2StoreError(`not a file: ${node.path}`);
      if (node.children.size > 0 && !recursive) throw new V2StoreError(`directory not empty: ${node.path}`);
      for (const child of [...node.children.values()]) this.remove(child, true, true);
    }
    const name = baseName(node.path);
    if (node.parent !== undefined && node.parent.children!.get(name) === node) {
      node.parent.children!.delete(name);
      this.ttlNodes.delete(node);
    }
  }

  /** Replaces the whole store with etcd's v2 snapshot JSON (its store's Root and CurrentIndex). */
  recover(snapshotJson: string): void {
    const saved = JSON.parse(snapshotJson) as { Root?: SavedNode; CurrentIndex?: number };
    if (typeof saved !== 'object' || saved === null || saved.Root === undefined)
      throw new Error('v2 snapshot: no Root node');
    this.currentIndex = saved.CurrentIndex ?? 0;
    this.ttlNodes.clear();
    this.root = this.restore(saved.Root, undefined);
  }

  private restore(saved: SavedNode, parent: V2Node | undefined): V2Node {
    const expireNs = parseGoTimeNs(saved.ExpireTime ?? '0001-01-01T00:00:00Z');
    const node = V2Store.node(
      saved.Path ?? '/',
      saved.CreatedIndex ?? 0,
      parent,
      expireNs,
      saved.Children === null || saved.Children === undefined ? undefined : new Map(),
      saved.Value ?? '',
    );
    node.modifiedIndex = saved.ModifiedIndex ?? 0;
    for (const [name, child] of Object.entries(saved.Children ?? {}))
      node.children!.set(name, this.restore(child, node));
    if (expireNs !== undefined) this.ttlNodes.add(node);
    return node;
  }
}

interface SavedNode {
  Path?: string;
  CreatedIndex?: number;
  ModifiedIndex?: number;
  ExpireTime?: string;
  Value?: string;
  Children?: Record<string, SavedNode> | null;
}

/** A Go time as JSON writes it (RFC 3339 with up to nine fraction digits) in Unix ns; undefined for the zero time. */
export function parseGoTimeNs(text: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (match === null) throw new Error(`v2 snapshot: not a time: ${text}`);
  if (match[1] === '0001-01-01T00:00:00' && (match[2] ?? '0').replace(/0/g, '') === '' && match[3] === 'Z')
    return undefined;
  const secondsMs = Date.parse(`${match[1]}${match[3]}`);
  return BigInt(secondsMs) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0') || '0');
}

/** A Unix ns time as Go's RFC3339Nano in UTC (trailing fraction zeros dropped). */
export function formatGoTimeNs(ns: bigint): string {
  const seconds = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  const fraction = ns - seconds * 1_000_000_000n;
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const digits = fraction === 0n ? '' : `.${String(fraction).padStart(9, '0').replace(/0+$/, '')}`;
  return `${base}${digits}Z`;
}
