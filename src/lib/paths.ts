/** Locates files shipped with the package (proto definitions, schemas) and a member's files in its data dir. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** The directory holding tsetcd's package.json, found by walking up from this file. */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && JSON.parse(readFileSync(candidate, 'utf8')).name === 'tsetcd') {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`tsetcd package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Where a member keeps its files: etcd's layout <data-dir>/member/{wal,snap/db}. */
export interface MemberPaths {
  memberDir: string;
  walDir: string;
  snapDir: string;
  backendPath: string;
}

/** A member's paths under `dataDir`; `walDir` ('' for the default) is etcd's --wal-dir. */
export function memberDataPaths(dataDir: string, walDir: string): MemberPaths {
  const memberDir = join(dataDir, 'member');
  return {
    memberDir,
    walDir: walDir || join(memberDir, 'wal'),
    snapDir: join(memberDir, 'snap'),
    backendPath: join(memberDir, 'snap', 'db'),
  };
}
