/** Free loopback ports for test members, found by letting the kernel pick and then releasing. */
import { createServer } from 'node:net';

export const loopbackHost = '127.0.0.1';

/** Asks the kernel for an unused loopback port; a tiny race window remains, acceptable for tests. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('expected one free port, saw none');
  return port;
}

/** Several distinct free ports; distinct because every listener is open until all are chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<{ port: number; close: () => Promise<void> }>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, loopbackHost, () => {
          const address = server.address();
          const port = address !== null && typeof address !== 'string' ? address.port : 0;
          resolve({ port, close: () => new Promise<void>((done) => server.close(() => done())) });
        });
      });
    }),
  );
  await Promise.all(servers.map((s) => s.close()));
  return servers.map((s) => s.port);
}

/** The ports among `ports` something on this machine already listens on. */
export async function busyPorts(ports: number[]): Promise<number[]> {
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
