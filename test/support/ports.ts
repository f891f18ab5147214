/** Free loopback ports for test members, found by letting the kernel pick and then releasing. */
import { createServer } from 'node:net';

export const loopbackHost = '127.0.0.1';

/**
 * Test members' ports are drawn from here: below the kernel's ephemeral range (32768-60999 by
 * default on Linux), where it picks the local port of every outgoing connection and of every
 * listen on port 0. A port chosen there and released could be taken by any such socket before the
 * member binds it, which happens when many tests run at once; here only another test's choice can
 * take it. The range keeps clear of etcd's own 2379/2380 and single-host mode's 22379/22380.
 */
const testPortFirst = 10_000;
const testPortEnd = 22_000;
/** Draws per call before giving up: only ports something listens on are passed over. */
const portDrawsMax = 500;

/** An unused loopback port; a tiny race window remains, with other tests only. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('expected one free port, saw none');
  return port;
}

/** Listens on `port` if it is free, so that it stays taken until closed. */
function holdPort(port: number): Promise<{ port: number; close: () => Promise<void> } | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, loopbackHost, () =>
      resolve({ port, close: () => new Promise<void>((done) => server.close(() => done())) }),
    );
  });
}

/** Several distinct free ports, drawn at random; distinct because each is held until all are chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const held: Array<{ port: number; close: () => Promise<void> }> = [];
  for (let draw = 0; held.length < count && draw < portDrawsMax; draw++) {
    const port = testPortFirst + Math.floor(Math.random() * (testPortEnd - testPortFirst));
    if (held.some((one) => one.port === port)) continue;
    const one = await holdPort(port);
    if (one !== undefined) held.push(one);
  }
  await Promise.all(held.map((one) => one.close()));
  if (held.length < count)
    throw new Error(`expected ${count} free ports in ${testPortFirst}-${testPortEnd - 1}, found ${held.length}`);
  return held.map((one) => one.port);
}

/** The ports among `ports` something on this machine already listens on (fixed-port tests skip then). */
export async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, loopbackHost, () => server.close(() => resolve(true)));
    });
    if (!free) busy.push(port);
  }
  return busy;
}
