/**
 * The error of a configuration that parsed but cannot run, in a module of its own so that what
 * checks a few flags (a snapshot restore's --initial-cluster) loads no YAML or schema parser.
 */
/** A configuration that parsed but cannot run: etcd exits with status 1. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
