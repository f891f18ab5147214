/** What every tsetcdctl command receives: its arguments, flags, output and a lazy connection. */
import { EtcdConnection, type Message } from './client.js';
import type { Discovery } from './discovery.js';
import { checkEnvironment, flagEnvName, type FlagValues } from './flags.js';
import { CtlExit, ExitCode, capnsLog, exitWithError, type Output } from './output.js';
import { Printer, type OutputFormat } from './printers.js';
import {
  clientSecurity,
  tlsForEndpoint,
  userCredentials,
  type ClientSecurity,
  type UserCredentials,
} from './security.js';
import type { StdinReader } from './stdin.js';

const outputFormats: readonly string[] = ['simple', 'json', 'fields', 'table', 'protobuf'];

/** Shared services for one command run. */
export class CommandContext {
  private connection: EtcdConnection | undefined;
  private readonly connections: EtcdConnection[] = [];
  private security: ClientSecurity | undefined;
  private user: Promise<UserCredentials | undefined> | undefined;
  private resolved: readonly string[] | undefined;
  private environmentChecked = false;
  valueOnly = false;

  constructor(
    readonly args: readonly string[],
    readonly flags: FlagValues,
    readonly output: Output,
    readonly stdin: StdinReader,
    /** The whole command line as typed (etcdctl's os.Args), for commands that look past `--`. */
    readonly rawArgs: readonly string[] = [],
    /** The environment the command runs in (its ETCDCTL_* variables, and what exec'd commands inherit). */
    readonly env: NodeJS.ProcessEnv = process.env,
    /** What --discovery-srv found, looked up before the command ran; undefined without the flag. */
    private readonly discovery?: Discovery,
    /** The flags the command inherits, which etcdctl's --debug lists as ETCDCTL_* variables. */
    private readonly inheritedFlagNames: readonly string[] = [],
  ) {}

  /** etcdctl's --debug: each inherited flag as its ETCDCTL_* variable and value, sorted by flag name. */
  private printDebugFlags(): void {
    if (!this.flags.bool('debug')) return;
    for (const name of [...this.inheritedFlagNames].sort())
      this.output.err(`${flagEnvName(name)}=${this.flags.text(name)}\n`);
  }

  /** etcdctl's check of the ETCDCTL_* variables, made when it reads them for its first client. */
  private checkEnvironment(): void {
    if (this.environmentChecked) return;
    this.environmentChecked = true;
    const { unrecognized, conflicting } = checkEnvironment(this.flags, this.inheritedFlagNames, this.env);
    for (const variable of unrecognized)
      capnsLog(this.output, 'W', 'pkg/flags', `unrecognized environment variable ${variable}`);
    if (conflicting === undefined) return;
    const message = `conflicting environment variable "${conflicting}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`;
    capnsLog(this.output, 'C', 'pkg/flags', message);
    throw new CtlExit(ExitCode.error);
  }

  /** --endpoints as given, which etcdctl's endpoint commands dial without --cluster (no discovery). */
  get flagEndpoints(): string[] {
    return this.flags.strings('endpoints').map((endpoint) => endpoint.trim());
  }

  /**
   * The endpoints a client dials, as etcdctl's endpointsFromCmd finds them: those --discovery-srv
   * found, else --endpoints. Like etcdctl, each call reports what discovery dropped (on stderr)
   * and exits when discovery failed.
   */
  resolveEndpoints(): string[] {
    this.resolved = this.discoveredOrFlagEndpoints();
    return [...this.resolved];
  }

  private discoveredOrFlagEndpoints(): string[] {
    if (this.discovery === undefined) return this.flagEndpoints;
    if (!this.discovery.ok) exitWithError(this.output, ExitCode.error, this.discovery.error);
    for (const notice of this.discovery.notices) this.output.err(notice);
    return this.discovery.endpoints.length > 0 ? [...this.discovery.endpoints] : this.flagEndpoints;
  }

  get commandTimeoutMs(): number {
    return this.flags.durationNs('command-timeout') / 1e6;
  }

  /** The output format, exiting as etcdctl does when it is not one it knows. */
  format(): OutputFormat {
    const format = this.flags.string('write-out');
    if (!outputFormats.includes(format)) exitWithError(this.output, ExitCode.badFeature, 'unsupported output format');
    return format as OutputFormat;
  }

  /** The client for --endpoints; like etcdctl it checks the output format when it is made. */
  client(): EtcdConnection {
    if (this.connection !== undefined) return this.connection;
    this.checkEnvironment();
    this.printDebugFlags();
    // A command that looked the endpoints up already dials those (etcdctl looks up once per client config).
    const endpoints = this.resolved ?? this.resolveEndpoints();
    this.format();
    this.connection = this.open(endpoints);
    return this.connection;
  }

  /** A separate connection to one endpoint, as etcdctl's endpoint commands dial each one. */
  open(endpoints: readonly string[]): EtcdConnection {
    this.checkEnvironment();
    // The TLS flags are read (and their files checked) when the first client is made, as in etcdctl.
    this.security ??= clientSecurity(this.flags, this.output);
    const tls = tlsForEndpoint(this.security, endpoints[0] ?? '');
    const connection = new EtcdConnection(endpoints, {
      ...(tls === undefined ? {} : { tls }),
      // The password is asked once per command, however many endpoints it dials.
      user: () => (this.user ??= userCredentials(this.flags, this.output, this.stdin)),
      dialTimeoutMs: this.flags.durationNs('dial-timeout') / 1e6,
      keepAliveTimeMs: this.flags.durationNs('keepalive-time') / 1e6,
      keepAliveTimeoutMs: this.flags.durationNs('keepalive-timeout') / 1e6,
    });
    this.connections.push(connection);
    return connection;
  }

  /** Unary KV call with the --command-timeout deadline. */
  kv(method: string, request: Message): Promise<Message> {
    return this.client().call('KV', method, request, this.commandTimeoutMs);
  }

  printer(): Printer {
    const format = this.format();
    return new Printer(this.output, {
      format,
      hex: this.flags.bool('hex'),
      valueOnly: this.valueOnly,
      serialize: (method, response) => this.client().serializeResponse('KV', method, response),
    });
  }

  close(): void {
    for (const connection of this.connections) connection.close();
  }
}
