/**
 * The key of the backend's alarm area, as etcd lays out its "alarm" bucket: the protobuf
 * pb.AlarmMember {memberID = 1, alarm = 2} is the key and the value is empty.
 */

import type { AlarmMember, AlarmType } from '../alarm/alarm-store.js';
import { protoReaderOf, pushVarint64 } from '../lib/protobuf.js';

const tagMemberId = 0x08;
const tagAlarm = 0x10;

/** pb.AlarmMember as gogoproto marshals it: fields in order, zero values left out. */
export function encodeAlarmKey(member: AlarmMember): Uint8Array {
  const out: number[] = [];
  if (member.memberId !== 0n) {
    out.push(tagMemberId);
    pushVarint64(out, member.memberId);
  }
  if (member.alarm !== 0) {
    out.push(tagAlarm);
    pushVarint64(out, BigInt(member.alarm));
  }
  return Uint8Array.from(out);
}

/** The inverse of encodeAlarmKey. */
export function decodeAlarmKey(bytes: Uint8Array): AlarmMember {
  const member: AlarmMember = { memberId: 0n, alarm: 0 as AlarmType };
  const reader = protoReaderOf(bytes);
  while (!reader.done) {
    const key = reader.key();
    if (key === tagMemberId) member.memberId = reader.bigUint64();
    else if (key === tagAlarm) member.alarm = reader.int64() as AlarmType;
    else throw new Error(`unexpected tag ${key} in a pb.AlarmMember key`);
  }
  return member;
}
