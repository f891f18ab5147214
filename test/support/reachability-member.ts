/**
 * A stand-in member for checking the partition harness itself: it takes a member's URL flags,
 * answers GET /health like a healthy member and GET /reach with which peers it can open a TCP
 * connection to and exchange a line with right now, and answers such lines on its peer port.
 * Run as `node reachability-member.js <etcd flags>`; it needs no data dir and no other member.
 */
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';

/** How long one reachability attempt may take before the peer counts as unreachable. */
const reachAttemptMs = 1_000;

function flag(name: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index < 0 ? undefined : process.argv[index + 1];
  if (value === undefined) throw new Error(`expected --${name} among ${process.argv.slice(2).join(' ')}`);
  return value;
}

const name = flag('name');
const clientUrl = new URL(flag('listen-client-urls'));
const peerUrl = new URL(flag('listen-peer-urls'));
const peers = flag('initial-cluster')
  .split(',')
  .map((entry) => entry.split('='))
  .filter(([peerName]) => peerName !== name)
  .map(([peerName = '', url = '']) => ({ name: peerName, url: new URL(url) }));

/** Whether a TCP connection to `url` opens and answers one line within reachAttemptMs. */
function reaches(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const done = (reached: boolean): void => {
      socket.destroy();
      resolve(reached);
    };
    socket.setTimeout(reachAttemptMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write(`${name}\n`));
    socket.once('data', () => done(true));
  });
}

createTcpServer((socket) => {
  socket.once('data', () => socket.end('answered\n'));
  socket.on('error', () => undefined);
}).listen(Number(peerUrl.port), peerUrl.hostname);

createHttpServer((request, response) => {
  if (request.url === '/health') {
    response.end(JSON.stringify({ health: 'true' }));
    return;
  }
  void Promise.all(peers.map(async (peer) => [peer.name, await reaches(peer.url)] as const)).then((reached) =>
    response.end(JSON.stringify(Object.fromEntries(reached))),
  );
}).listen(Number(clientUrl.port), clientUrl.hostname);
