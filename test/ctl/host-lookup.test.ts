/** The names tsetcdctl asks DNS for a host name, as Go's resolver makes them from resolv.conf. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goNameList } from '../../ctl/host-lookup.js';

describe("host names are searched as Go's resolver searches them", () => {
  it('tries a name with fewer dots than ndots under each search domain first, then as it is', () => {
    assert.deepEqual(goNameList('node1', 'nameserver 127.0.0.1\nsearch example.test\n', 'vm'), [
      'node1.example.test',
      'node1',
    ]);
    assert.deepEqual(goNameList('a.b', 'search x.test y.test.\noptions ndots:2\n', 'vm'), [
      'a.b.x.test',
      'a.b.y.test',
      'a.b',
    ]);
  });

  it('tries a name with ndots dots or more as it is first, and a rooted name only as it is', () => {
    assert.deepEqual(goNameList('a.b', 'search x.test\n', 'vm'), ['a.b', 'a.b.x.test']);
    assert.deepEqual(goNameList('node1', 'search x.test\noptions ndots:0\n', 'vm'), ['node1', 'node1.x.test']);
    assert.deepEqual(goNameList('node1.', 'search x.test\n', 'vm'), ['node1']);
  });

  it("takes the last search or domain line, and without either the domain of the host's name", () => {
    assert.deepEqual(goNameList('n', 'search a.test\ndomain b.test\n', 'vm'), ['n.b.test', 'n']);
    assert.deepEqual(goNameList('n', 'domain b.test\nsearch a.test c.test\n', 'vm'), ['n.a.test', 'n.c.test', 'n']);
    assert.deepEqual(goNameList('n', 'nameserver 127.0.0.1\n', 'vm.corp.test'), ['n.corp.test', 'n']);
    assert.deepEqual(goNameList('n', 'search\n', 'vm.corp.test'), ['n.corp.test', 'n']);
    assert.deepEqual(goNameList('n', '', 'vm'), ['n']);
    assert.deepEqual(goNameList('n', '# search a.test\n', 'vm.'), ['n']);
  });

  it('caps ndots at 15, reads a value without digits as 0, and leaves out names longer than DNS allows', () => {
    const fifteenDots = `${'a.'.repeat(15)}b`;
    assert.deepEqual(goNameList(fifteenDots, 'search x.test\noptions ndots:99\n', 'vm'), [
      fifteenDots,
      `${fifteenDots}.x.test`,
    ]);
    assert.deepEqual(goNameList('n', 'search x.test\noptions ndots:x\n', 'vm'), ['n', 'n.x.test']);
    const long = 'a'.repeat(250);
    assert.deepEqual(goNameList(long, 'search x.test\n', 'vm'), [long]);
    assert.deepEqual(goNameList('a'.repeat(255), 'search x.test\n', 'vm'), []);
  });
});
