/**
 * etcd's alarm store: the set of raised alarms, each a (member id, alarm type) pair. Alarms are
 * raised and disarmed only by applied Raft proposals, so every member holds the same set; the
 * backend keeps it (the "alarm" area) so it survives restarts and travels in snapshots.
 */

/** etcd's pb.AlarmType; the numbers are the protobuf enum's. */
export const enum AlarmType {
  /** In a request: any alarm. */
  none = 0,
  noSpace = 1,
  corrupt = 2,
}

/** etcd's pb.AlarmRequest_AlarmAction. */
export const enum AlarmAction {
  get = 0,
  activate = 1,
  deactivate = 2,
}

/** etcd's pb.AlarmMember. */
export interface AlarmMember {
  memberId: bigint;
  alarm: AlarmType;
}

/** etcd's pb.AlarmRequest, as it travels through Raft. */
export interface AlarmRequest {
  action: AlarmAction;
  memberId: bigint;
  alarm: AlarmType;
}

const alarmTypeNames: Record<AlarmType, string> = {
  [AlarmType.none]: 'NONE',
  [AlarmType.noSpace]: 'NOSPACE',
  [AlarmType.corrupt]: 'CORRUPT',
};

/** The protobuf enum name of an alarm type ("NOSPACE"), as etcd prints it. */
export function alarmTypeName(alarm: AlarmType): string {
  return alarmTypeNames[alarm] ?? String(alarm);
}

/** The protobuf enum number of an alarm type name or number; undefined when it names none. */
export function alarmTypeOf(value: unknown): AlarmType | undefined {
  if (value === undefined || value === null) return AlarmType.none;
  if (typeof value === 'number') return value in alarmTypeNames ? (value as AlarmType) : undefined;
  const found = Object.entries(alarmTypeNames).find(([, name]) => name === value);
  return found === undefined ? undefined : (Number(found[0]) as AlarmType);
}

/**
 * An alarm as etcd's AlarmMember.String() writes it (protobuf text format, trailing space included),
 * which is what `etcdctl alarm list` prints and Status.errors carries.
 */
export function describeAlarm(member: AlarmMember): string {
  // The text format leaves out fields holding their zero value (member 0, alarm NONE).
  const memberText = member.memberId === 0n ? '' : `memberID:${member.memberId} `;
  const alarmText = member.alarm === AlarmType.none ? '' : `alarm:${alarmTypeName(member.alarm)} `;
  return memberText + alarmText;
}

/** What applying an alarm request changed, for the apply step to persist and log. */
export interface AlarmChange {
  /** The alarms the response lists. */
  alarms: AlarmMember[];
  /** The record to store (activate) or remove (deactivate), when the set changed. */
  stored?: { put: AlarmMember } | { delete: AlarmMember };
  /** Set when the first alarm of its type was raised or the last one disarmed. */
  transition?: 'raised' | 'disarmed';
}

export class AlarmStore {
  private readonly byType = new Map<AlarmType, Map<bigint, AlarmMember>>();

  constructor(stored: Iterable<AlarmMember> = []) {
    for (const member of stored) this.add(member);
  }

  /** The alarms of `alarm` (every alarm for NONE), in member id order. */
  get(alarm: AlarmType): AlarmMember[] {
    const types = alarm === AlarmType.none ? [...this.byType.keys()].sort() : [alarm];
    const found: AlarmMember[] = [];
    for (const type of types) {
      const members = [...(this.byType.get(type)?.values() ?? [])];
      members.sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
      found.push(...members.map((member) => ({ ...member })));
    }
    return found;
  }

  /** True while at least one alarm of `alarm` stands. */
  has(alarm: AlarmType): boolean {
    return (this.byType.get(alarm)?.size ?? 0) > 0;
  }

  /** Applies one committed alarm request, as etcd's applier does. */
  apply(request: AlarmRequest): AlarmChange {
    switch (request.action) {
      case AlarmAction.get:
        return { alarms: this.get(request.alarm) };
      case AlarmAction.activate:
        return this.activate(request);
      case AlarmAction.deactivate:
        return this.deactivate(request);
      default:
        return { alarms: [] };
    }
  }

  /** Every member's alarms replaced by `stored` (a snapshot's backend was installed). */
  reset(stored: Iterable<AlarmMember>): void {
    this.byType.clear();
    for (const member of stored) this.add(member);
  }

  private activate(request: AlarmRequest): AlarmChange {
    const before = this.byType.get(request.alarm)?.size ?? 0;
    const existing = this.byType.get(request.alarm)?.get(request.memberId);
    if (existing !== undefined) return { alarms: [{ ...existing }] };
    const member = { memberId: request.memberId, alarm: request.alarm };
    this.add(member);
    return { alarms: [{ ...member }], stored: { put: member }, ...(before === 0 ? { transition: 'raised' } : {}) };
  }

  private deactivate(request: AlarmRequest): AlarmChange {
    const members = this.byType.get(request.alarm);
    const existing = members?.get(request.memberId);
    if (members === undefined || existing === undefined) return { alarms: [] };
    members.delete(request.memberId);
    return {
      alarms: [{ ...existing }],
      stored: { delete: existing },
      ...(members.size === 0 ? { transition: 'disarmed' } : {}),
    };
  }

  private add(member: AlarmMember): void {
    let members = this.byType.get(member.alarm);
    if (members === undefined) {
      members = new Map();
      this.byType.set(member.alarm, members);
    }
    if (!members.has(member.memberId)) members.set(member.memberId, { ...member });
  }
}
