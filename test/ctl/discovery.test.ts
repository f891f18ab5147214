/** The order and names of --discovery-srv's SRV look-ups, as etcdctl's Go resolver makes them. */
import assert from 'node:assert/strict';
import type { SrvRecord } from 'node:dns';
import { describe, it } from 'node:test';
import { goLookupBudgetMs, orderSrvRecords, srvServiceName } from '../../ctl/discovery.js';

const record = (name: string, priority: number, weight: number): SrvRecord => ({ name, port: 2379, priority, weight });
const names = (records: readonly SrvRecord[]): string[] => records.map((r) => r.name);

describe('discovery orders SRV records as Go does', () => {
  it('puts lower priorities first and keeps the answer order of weightless records', () => {
    const answer = [record('c', 10, 0), record('a', 0, 0), record('b', 0, 0), record('d', 10, 0)];
    assert.deepEqual(names(orderSrvRecords(answer, () => 0.99)), ['a', 'b', 'c', 'd']);
  });

  it('draws the first record of a priority by weight, swapping it to the front', () => {
    // Sorted by weight: light (1), heavy (3); a draw of 0 picks light, a draw of 1 to 3 picks heavy.
    const answer = [record('heavy', 0, 3), record('light', 0, 1)];
    assert.deepEqual(names(orderSrvRecords(answer, () => 0)), ['light', 'heavy']);
    assert.deepEqual(names(orderSrvRecords(answer, () => 0.5)), ['heavy', 'light']);
    // Go swaps rather than shifts: drawing z (the last of three) moves x to z's place, so the
    // next draw (the last of the two left) picks x: z, x, y, where shifting would give z, y, x.
    const three = [record('x', 0, 1), record('y', 0, 1), record('z', 0, 1)];
    assert.deepEqual(names(orderSrvRecords(three, () => 0.9)), ['z', 'x', 'y']);
  });

  it('names the services etcd-client-ssl and etcd-client, with -<name> under --discovery-srv-name', () => {
    assert.equal(srvServiceName('https', ''), 'etcd-client-ssl');
    assert.equal(srvServiceName('http', ''), 'etcd-client');
    assert.equal(srvServiceName('https', 'blue'), 'etcd-client-ssl-blue');
    assert.equal(srvServiceName('http', 'blue'), 'etcd-client-blue');
  });

  it("gives up on a name after Go's budget: timeout times attempts per server, from resolv.conf's options", () => {
    assert.equal(goLookupBudgetMs('nameserver 127.0.0.1\n', 1), 10_000);
    assert.equal(goLookupBudgetMs('nameserver 10.0.0.1\nnameserver 10.0.0.2\n', 2), 20_000);
    assert.equal(goLookupBudgetMs('nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:3\n', 1), 3_000);
    assert.equal(goLookupBudgetMs('options timeout:0 attempts:x\n', 1), 10_000, 'unusable values leave the defaults');
  });
});
