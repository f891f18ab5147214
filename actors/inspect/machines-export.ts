/**
 * `tsetcd machines --export DIR`: writes each machine's definition (XState's machine.toJSON()) to
 * DIR/<machine id>.json, which Stately's visualiser opens.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineCatalog } from '../../machines/catalog.js';

export const machinesUsage =
  'Usage:\n\n  tsetcd machines --export DIR\n    Write each state machine definition as DIR/<id>.json.\n';

/** Writes every machine's definition into `dir`; returns the files written. */
export function exportMachines(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return machineCatalog.map((machine) => {
    const file = join(dir, `${machine.id}.json`);
    writeFileSync(file, `${JSON.stringify(machine.toJSON(), null, 2)}\n`);
    return file;
  });
}

/** Entry point of `tsetcd machines`; exits 2 on a flag error as etcd does. */
export function runMachines(argv: string[]): void {
  const [flag, value] = argv[0]?.includes('=') === true ? argv[0].split(/=(.*)/s) : [argv[0], argv[1]];
  if ((flag !== '--export' && flag !== '-export') || value === undefined || value === '') {
    process.stderr.write(machinesUsage);
    process.exit(2);
  }
  for (const file of exportMachines(value)) process.stdout.write(`${file}\n`);
}
