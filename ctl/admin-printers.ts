/**
 * etcdctl's output for lease, member, alarm, hashkv and move-leader, in each -w format. etcdctl's
 * JSON and protobuf printers hand the client library's response to encoding/json and to Marshal:
 * for the lease responses that is clientv3's own struct (the header's fields inlined in JSON, only
 * the embedded header in protobuf), for the rest the protobuf message itself.
 */
import type { Message } from './client.js';
import { goJsonString, goQuote } from './go-format.js';
import { ExitCode, exitWithError, goPanic, type Output } from './output.js';
import {
  encodeMessage,
  enumName,
  fieldsHeaderText,
  messageJson,
  messageText,
  renderTable,
  type OutputFormat,
} from './printers.js';

/** One member's hash from `endpoint hashkv`. */
export interface EndpointHash {
  readonly endpoint: string;
  readonly response: Message;
}

/** What a Go nil-pointer dereference prints before the stack, as etcdctl's fields printer does on a missing header. */
const nilDereference =
  'runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0xb9181e]';

/** %016x of a lease ID. */
export function leaseHex(id: string | bigint): string {
  return BigInt(id).toString(16).padStart(16, '0');
}

/** %16x of a member or cluster ID. */
function memberHex(id: string | bigint): string {
  return BigInt(id).toString(16).padStart(16, ' ');
}

/** Prints cluster-administration responses as etcdctl's display does for one output format. */
export class AdminDisplay {
  constructor(
    readonly output: Output,
    readonly format: OutputFormat,
  ) {}

  grant(response: Message): void {
    this.leaseResponse(
      response,
      () => `lease ${leaseHex(response.ID)} granted with TTL(${response.TTL}s)\n`,
      `"ID":${response.ID},"TTL":${response.TTL},"Error":${goJsonString(response.error as string)}`,
      `"ID" : ${response.ID}\n"TTL" : ${response.TTL}\n`,
    );
  }

  revoke(id: bigint, response: Message): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(`lease ${leaseHex(id)} revoked\n`);
      case 'json':
        return this.output.out(`${messageJson('etcdserverpb.LeaseRevokeResponse', response)}\n`);
      case 'fields':
        return this.output.out(fieldsHeaderText(response.header));
      case 'protobuf':
        // clientv3's LeaseRevokeResponse is a type of its own without Marshal, so etcdctl refuses it.
        return exitWithError(
          this.output,
          ExitCode.badFeature,
          `marshal unsupported for type clientv3.LeaseRevokeResponse ({${messageText('etcdserverpb.ResponseHeader', response.header)}})`,
        );
      case 'table':
        this.unsupported();
    }
  }

  keepAlive(response: Message): void {
    this.leaseResponse(
      response,
      () => `lease ${leaseHex(response.ID)} keepalived with TTL(${response.TTL})\n`,
      `"ID":${response.ID},"TTL":${response.TTL}`,
      `"ID" : ${response.ID}\n"TTL" : ${response.TTL}\n`,
    );
  }

  timeToLive(response: Message, keys: boolean): void {
    const attached = response.keys as Buffer[];
    const simple = (): Buffer => {
      if (response.grantedTTL === '0' && response.TTL === '-1')
        return Buffer.from(`lease ${leaseHex(response.ID)} already expired\n`);
      const text = `lease ${leaseHex(response.ID)} granted with TTL(${response.grantedTTL}s), remaining(${response.TTL}s)`;
      if (!keys) return Buffer.from(`${text}\n`);
      // Keys print as their raw bytes, space separated, as fmt prints a []string.
      const keyList = attached.flatMap((key, index) => (index === 0 ? [key] : [Buffer.from(' '), key]));
      return Buffer.concat([Buffer.from(`${text}, attached keys([`), ...keyList, Buffer.from('])\n')]);
    };
    const keysJson =
      attached.length === 0 ? 'null' : `[${attached.map((key) => `"${key.toString('base64')}"`).join(',')}]`;
    this.leaseResponse(
      response,
      simple,
      `"id":${response.ID},"ttl":${response.TTL},"granted-ttl":${response.grantedTTL},"keys":${keysJson}`,
      `"ID" : ${response.ID}\n"TTL" : ${response.TTL}\n"GrantedTTL" : ${response.grantedTTL}\n${attached.map((key) => `"Key" : ${goQuote(key)}\n`).join('')}`,
    );
  }

  leases(response: Message): void {
    const leases = response.leases as Message[];
    this.leaseResponse(
      response,
      () => `found ${leases.length} leases\n${leases.map((lease) => `${leaseHex(lease.ID)}\n`).join('')}`,
      `"leases":[${leases.map((lease) => `{"id":${lease.ID}}`).join(',')}]`,
      leases.map((lease) => `"ID" : ${lease.ID}\n`).join(''),
    );
  }

  memberAdd(response: Message, name: string, peerUrls: string): void {
    const member = response.member as Message;
    const simple = (): string => {
      const newId = member.ID as string;
      const cluster = (response.members as Message[]).flatMap((each) =>
        (each.peerURLs as string[]).map((url) => `${each.ID === newId ? name : each.name}=${url}`),
      );
      return (
        `Member ${memberHex(newId)} added to cluster ${memberHex(response.header.cluster_id)}\n\n` +
        `ETCD_NAME=${quote(name)}\nETCD_INITIAL_CLUSTER=${quote(cluster.join(','))}\n` +
        `ETCD_INITIAL_ADVERTISE_PEER_URLS=${quote(peerUrls)}\nETCD_INITIAL_CLUSTER_STATE="existing"\n`
      );
    };
    this.message('MemberAddResponse', response, simple);
  }

  memberChange(verb: 'removed from' | 'updated in', id: bigint, typeName: string, response: Message): void {
    this.message(
      typeName,
      response,
      () => `Member ${memberHex(id)} ${verb} cluster ${memberHex(response.header.cluster_id)}\n`,
    );
  }

  /** etcdctl 3.4's printers other than simple have no MemberPromote: they dereference a nil printer. */
  memberPromote(id: bigint, response: Message): void {
    if (this.format !== 'simple') goPanic(this.output, nilDereference.replace('addr=0x0', 'addr=0x18'));
    this.output.out(`Member ${memberHex(id)} promoted in cluster ${memberHex(response.header.cluster_id)}\n`);
  }

  memberList(response: Message): void {
    const rows = (response.members as Message[]).map((member) => [
      BigInt(member.ID as string).toString(16),
      member.name === '' ? 'unstarted' : 'started',
      member.name as string,
      (member.peerURLs as string[]).join(','),
      (member.clientURLs as string[]).join(','),
      String(member.isLearner),
    ]);
    switch (this.format) {
      case 'simple':
        return this.output.out(rows.map((row) => `${row.join(', ')}\n`).join(''));
      case 'table': {
        const header = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];
        return this.output.out(renderTable(header, rows));
      }
      case 'fields':
        this.output.out(fieldsHeaderText(response.header));
        for (const member of response.members as Message[]) {
          const urls = (label: string, list: string[]): string =>
            list.map((url) => `"${label}" : ${quote(url)}\n`).join('');
          this.output.out(
            `"ID" : ${member.ID}\n"Name" : ${quote(member.name as string)}\n${urls('PeerURL', member.peerURLs as string[])}` +
              `${urls('ClientURL', member.clientURLs as string[])}"IsLearner" : ${member.isLearner}\n\n`,
          );
        }
        return;
      case 'json':
      case 'protobuf':
        return this.rpc('MemberListResponse', response);
    }
  }

  alarm(response: Message): void {
    const alarms = response.alarms as Message[];
    switch (this.format) {
      case 'simple':
        return this.output.out(alarms.map((alarm) => `${messageText('etcdserverpb.AlarmMember', alarm)}\n`).join(''));
      case 'fields':
        // etcd 3.4 answers Alarm without a header, and etcdctl's fields printer reads it regardless.
        if (response.header === null || response.header === undefined) goPanic(this.output, nilDereference);
        this.output.out(fieldsHeaderText(response.header));
        for (const alarm of alarms) {
          const name = enumName('etcdserverpb.AlarmType', alarm.alarm as number);
          this.output.out(`"MemberID" : ${alarm.memberID}\n"AlarmType" : ${name}\n\n`);
        }
        return;
      case 'json':
      case 'protobuf':
        return this.rpc('AlarmResponse', response);
      case 'table':
        this.unsupported();
    }
  }

  hashKv(list: readonly EndpointHash[]): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(list.map((item) => `${item.endpoint}, ${item.response.hash}\n`).join(''));
      case 'json': {
        const items = list.map(
          (item) =>
            `{"Endpoint":${goJsonString(item.endpoint)},"HashKV":${messageJson('etcdserverpb.HashKVResponse', item.response)}}`,
        );
        return this.output.out(`[${items.join(',')}]\n`);
      }
      case 'fields':
        for (const item of list) {
          this.output.out(
            `${fieldsHeaderText(item.response.header)}"Endpoint" : ${quote(item.endpoint)}\n"Hash" : ${item.response.hash}\n\n`,
          );
        }
        return;
      case 'table':
        return this.output.out(
          renderTable(
            ['endpoint', 'hash'],
            list.map((item) => [item.endpoint, String(item.response.hash)]),
          ),
        );
      case 'protobuf':
        this.unsupported();
    }
  }

  moveLeader(leader: bigint, target: bigint, response: Message): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(`Leadership transferred from ${leader.toString(16)} to ${target.toString(16)}\n`);
      case 'json':
      case 'protobuf':
        return this.rpc('MoveLeaderResponse', response);
      case 'fields':
      case 'table':
        this.unsupported();
    }
  }

  /**
   * clientv3's lease responses embed the header: JSON inlines its fields before `jsonTail`, and
   * protobuf marshals the header alone (the only Marshal method the struct has).
   */
  private leaseResponse(response: Message, simple: () => string | Buffer, jsonTail: string, fieldsTail: string): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(simple());
      case 'json': {
        const header = messageJson('etcdserverpb.ResponseHeader', response.header).slice(1, -1);
        return this.output.out(`{${header === '' ? '' : `${header},`}${jsonTail}}\n`);
      }
      case 'fields':
        return this.output.out(`${fieldsHeaderText(response.header)}${fieldsTail}`);
      case 'protobuf':
        return this.output.out(encodeMessage('etcdserverpb.ResponseHeader', response.header));
      case 'table':
        this.unsupported();
    }
  }

  /** Member add, remove and update: simple has its own words, JSON and protobuf the message, the rest refuse. */
  private message(typeName: string, response: Message, simple: () => string): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(simple());
      case 'json':
      case 'protobuf':
        return this.rpc(typeName, response);
      case 'fields':
      case 'table':
        this.unsupported();
    }
  }

  /** etcdctl's printerRPC: encoding/json or Marshal of the response message. */
  rpc(typeName: string, response: Message): void {
    const qualified = typeName.includes('.') ? typeName : `etcdserverpb.${typeName}`;
    if (this.format === 'protobuf') this.output.out(encodeMessage(qualified, response));
    else this.output.out(`${messageJson(qualified, response)}\n`);
  }

  unsupported(): never {
    exitWithError(this.output, ExitCode.badFeature, `${this.format} not supported as output format`);
  }
}

function quote(text: string): string {
  return goQuote(Buffer.from(text));
}
