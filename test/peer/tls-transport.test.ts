import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  appendMessage,
  connectAll,
  heartbeat,
  sleep,
  snapshotMessage,
  startMember,
  type TestMember,
  waitFor,
} from './helpers.js';
import { hasOpenssl, makeCertificates, revoke, type TestCertificates } from '../support/tls.js';

const skip = hasOpenssl() ? false : 'openssl is not installed';
let certs: TestCertificates;

before(() => {
  if (!skip) certs = makeCertificates();
});
after(() => certs?.remove());

const tlsUrl = 'https://127.0.0.1:0';

async function closeAll(members: TestMember[]): Promise<void> {
  await Promise.all(members.map((member) => member.transport.close()));
}

test('members exchange batches over wss with client certificate auth', { skip }, async () => {
  const a = await startMember(1n, { listenUrl: tlsUrl, tls: certs.member('member1') });
  const b = await startMember(2n, { listenUrl: tlsUrl, tls: certs.member('member2') });
  try {
    assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    await connectAll([a, b]);
    a.transport.send([appendMessage(1n, 2n, 1, 64, 256), snapshotMessage(1n, 2n, 1000)]);
    b.transport.send([heartbeat(2n, 1n)]);
    await waitFor(() => b.received.length === 2 && a.received.length === 1, 'batches over TLS');
    await waitFor(() => a.snapshotStatus.length === 1, 'snapshot status');
    assert.deepStrictEqual(a.snapshotStatus, [{ id: 2n, ok: true }]);
  } finally {
    await closeAll([a, b]);
  }
});

test('a peer whose certificate another CA signed is refused', { skip }, async () => {
  const a = await startMember(1n, { listenUrl: tlsUrl, tls: certs.member('member1') });
  // The intruder trusts a's CA, so only a's check of the client certificate can stop it.
  const intruderTls = { ...certs.member('member2', 'otherCa'), trustedCaFile: certs.member('member1').trustedCaFile };
  const intruder = await startMember(2n, { listenUrl: 'http://127.0.0.1:0', tls: intruderTls });
  try {
    a.transport.addPeer(2n, [intruder.url]);
    intruder.transport.addPeer(1n, [a.url]);
    await waitFor(() => a.log.has('rejected connection'), 'handshake refusal logged');
    assert.deepStrictEqual(intruder.transport.activePeers(), []);
    intruder.transport.send([heartbeat(2n, 1n)]);
    await sleep(5);
    assert.deepStrictEqual(intruder.unreachable, [1n]);
    assert.equal(a.received.length, 0);
  } finally {
    await closeAll([a, intruder]);
  }
});

test('a member refuses to dial a peer whose server certificate it cannot verify', { skip }, async () => {
  const a = await startMember(1n, { listenUrl: tlsUrl, tls: certs.member('member1', 'otherCa') });
  const b = await startMember(2n, { listenUrl: tlsUrl, tls: certs.member('member2') });
  try {
    b.transport.addPeer(1n, [a.url]);
    await waitFor(() => b.log.has('failed to dial remote peer'), 'dial failure logged');
    assert.ok(
      b.log.lines.some((line) => /certificate/i.test(JSON.stringify(line.fields))),
      'the error names the certificate',
    );
    assert.deepStrictEqual(b.transport.activePeers(), []);
  } finally {
    await closeAll([a, b]);
  }
});

test('a client certificate with a CommonName other than --peer-cert-allowed-cn is refused', { skip }, async () => {
  const a = await startMember(1n, { listenUrl: tlsUrl, tls: { ...certs.member('member1'), allowedCn: 'member2' } });
  const b = await startMember(2n, { listenUrl: tlsUrl, tls: certs.member('member2') });
  const c = await startMember(3n, { listenUrl: tlsUrl, tls: certs.member('intruder') });
  try {
    for (const other of [b, c]) {
      a.transport.addPeer(other.id, [other.url]);
      other.transport.addPeer(1n, [a.url]);
    }
    await waitFor(() => b.transport.activePeers().length === 1, 'allowed CN accepted');
    await waitFor(() => a.log.has('client certificate authentication failed'), 'wrong CN refused');
    assert.deepStrictEqual(c.transport.activePeers(), []);
  } finally {
    await closeAll([a, b, c]);
  }
});

test('a peer without a client certificate is refused when client cert auth is on', { skip }, async () => {
  const a = await startMember(1n, { listenUrl: tlsUrl, tls: certs.member('member1') });
  const b = await startMember(2n, { tls: { ...certs.member('member2'), certFile: '', keyFile: '' } });
  try {
    a.transport.addPeer(2n, [b.url]);
    b.transport.addPeer(1n, [a.url]);
    await waitFor(() => a.log.has('rejected connection'), 'refusal logged');
    await sleep(50);
    assert.deepStrictEqual(b.transport.activePeers(), []);
  } finally {
    await closeAll([a, b]);
  }
});

test(
  'a peer whose certificate --peer-crl-file revokes is refused, another from the same CA accepted',
  { skip },
  async () => {
    const crlFile = revoke(certs.dir, certs.member('revoked').certFile);
    const a = await startMember(1n, { listenUrl: tlsUrl, tls: { ...certs.member('member1'), crlFile } });
    const b = await startMember(2n, { listenUrl: tlsUrl, tls: certs.member('member2') });
    const c = await startMember(3n, { listenUrl: tlsUrl, tls: certs.member('revoked') });
    try {
      for (const other of [b, c]) {
        a.transport.addPeer(other.id, [other.url]);
        other.transport.addPeer(1n, [a.url]);
      }
      await waitFor(() => b.transport.activePeers().length === 1, 'unrevoked certificate accepted');
      await waitFor(() => a.log.has('rejected connection'), 'revoked certificate refused');
      assert.deepStrictEqual(c.transport.activePeers(), []);
    } finally {
      await closeAll([a, b, c]);
    }
  },
);

test('--peer-cert-allowed-hostname accepts a certificate valid for it and refuses others', { skip }, async () => {
  // The test certificates are valid for localhost and 127.0.0.1 only.
  const a = await startMember(1n, {
    listenUrl: tlsUrl,
    tls: { ...certs.member('member1'), allowedHostname: 'localhost' },
  });
  const b = await startMember(2n, { listenUrl: tlsUrl, tls: certs.member('member2') });
  const c = await startMember(3n, {
    listenUrl: tlsUrl,
    tls: { ...certs.member('member3'), allowedHostname: 'elsewhere.example' },
  });
  try {
    for (const [from, to] of [
      [b, a],
      [b, c],
    ] as const) {
      from.transport.addPeer(to.id, [to.url]);
      to.transport.addPeer(from.id, [from.url]);
    }
    await waitFor(() => b.transport.activePeers().includes(1n), 'certificate valid for the hostname accepted');
    await waitFor(() => c.log.has('client certificate authentication failed'), 'certificate not valid for it refused');
    assert.ok(!b.transport.activePeers().includes(3n));
  } finally {
    await closeAll([a, b, c]);
  }
});
