/**
 * The reference the differential tests compare against is pinned: etcd and etcdctl must report
 * the minor version the expectations were written for (3.4, from 3.4.23), and the versions found
 * are printed with the results.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkReferenceVersions, etcdReferenceVersion, etcdReferenceVersions } from '../support/sut.js';

const etcdOutput = (version: string): string =>
  `etcd Version: ${version}\nGit SHA: Not provided\nGo Version: go1.19.8\nGo OS/Arch: linux/amd64\n`;
const etcdctlOutput = (version: string): string => `etcdctl version: ${version}\nAPI version: 3.4\n`;

test('the installed etcd and etcdctl are the reference version, and the run prints them', (t) => {
  const found = etcdReferenceVersions();
  t.diagnostic(
    `reference: etcd ${found.etcd}, etcdctl ${found.etcdctl} (expectations written against ${etcdReferenceVersion})`,
  );
  if (found.etcd !== etcdReferenceVersion || found.etcdctl !== etcdReferenceVersion)
    t.diagnostic(`another 3.4 patch release than ${etcdReferenceVersion}: accepted, formats do not change within 3.4`);
});

test('a 3.4 patch release is accepted and read from both outputs', () => {
  assert.deepEqual(checkReferenceVersions(etcdOutput('3.4.23'), etcdctlOutput('3.4.23')), {
    etcd: '3.4.23',
    etcdctl: '3.4.23',
  });
  assert.deepEqual(checkReferenceVersions(etcdOutput('3.4.30'), etcdctlOutput('3.4.27')), {
    etcd: '3.4.30',
    etcdctl: '3.4.27',
  });
});

test('another minor version of either binary, or output without a version, is refused naming what was found', () => {
  assert.throws(
    () => checkReferenceVersions(etcdOutput('3.5.9'), etcdctlOutput('3.4.23')),
    /\/usr\/bin\/etcd reports 3\.5\.9, but the tests compare against etcd 3\.4\.x \(written against 3\.4\.23\)/,
  );
  assert.throws(
    () => checkReferenceVersions(etcdOutput('3.4.23'), etcdctlOutput('3.3.25')),
    /\/usr\/bin\/etcdctl reports 3\.3\.25/,
  );
  assert.throws(() => checkReferenceVersions('', etcdctlOutput('3.4.23')), /\/usr\/bin\/etcd reports no version/);
  assert.throws(
    () => checkReferenceVersions(etcdOutput('3.40.1'), etcdctlOutput('3.4.23')),
    /reports 3\.40\.1/,
    'the minor version is compared as a whole number, not a prefix',
  );
});
