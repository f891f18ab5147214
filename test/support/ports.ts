/** Free loopback ports for test members: drawn from a test range, reserved across test processes, checked by a bind. */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../src/lib/process-alive.js';

export const loopbackHost = '127.0.0.1';

/**
 * Test members' ports are drawn from here: below the kernel's ephemeral range (32768-60999 by
 * default on Linux), where it picks the local port of every outgoing connection and of every
 * listen on port 0. A port chosen there and released could be taken by any such socket before the
 * member binds it, which happens when many tests run at once; here only another test's choice could
 * take it, which the reservations below rule out. The range keeps clear of etcd's own 2379/2380
 * and single-host mode's 22379/22380.
 */
const testPortRangeDefault = '10000-21999';
/** TSETCD_TEST_PORT_RANGE (first-last) narrows the range, for ports' own test. */
const [testPortFirst, testPortEnd] = portRange(process.env.TSETCD_TEST_PORT_RANGE || testPortRangeDefault);
/** Draws per call before giving up: only ports something listens on are passed over. */
const portDrawsMax = 500;

/**
 * Ports handed out by any test process on this machine, a file per port holding the process's PID.
 * A port is free between its draw and the member's bind, which under load took 3.5 s, and another
 * test file drawing the same port then made a member fail with EADDRINUSE. A port taken here stays
 * this process's until it exits; a dead process's ports are taken over.
 */
const reservationDir = process.env.TSETCD_TEST_PORT_DIR || join(tmpdir(), 'tsetcd-test-ports');
const reservedHere: number[] = [];

/** Takes `port` for this process unless a live test process holds it. */
function reservePort(port: number): boolean {
  const path = join(reservationDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      if (reservedHere.length === 0) process.once('exit', releaseReserved);
      reservedHere.push(port);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(path, 'utf8'));
    } catch {
      continue;
    }
    // A holder still writing its PID reads as 0: treated as alive.
    if (holder === 0 || holder === process.pid || processAlive(holder)) return false;
    try {
      unlinkSync(path);
    } catch {
      // Another process took it over first; the next attempt finds out.
    }
  }
  return false;
}

function releaseReserved(): void {
  for (const port of reservedHere.splice(0))
    try {
      unlinkSync(join(reservationDir, String(port)));
    } catch {
      // Already taken over or removed.
    }
}

function portRange(text: string): [first: number, end: number] {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2]);
  if (match === null || first < 1 || last > 65_535 || first > last)
    throw new Error(`TSETCD_TEST_PORT_RANGE must be first-last, saw ${text}`);
  return [first, last + 1];
}

/** An unused loopback port, reserved for this process (see reservePort). */
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
  mkdirSync(reservationDir, { recursive: true, mode: 0o1777 });
  const held: Array<{ port: number; close: () => Promise<void> }> = [];
  for (let draw = 0; held.length < count && draw < portDrawsMax; draw++) {
    const port = testPortFirst + Math.floor(Math.random() * (testPortEnd - testPortFirst));
    if (held.some((one) => one.port === port) || !reservePort(port)) continue;
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

/** Whether something accepts connections on loopback `port` (a connect, never a bind that could take the port). */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, loopbackHost);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
