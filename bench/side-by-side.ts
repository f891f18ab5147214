/** What every etcd-vs-tsetcd benchmark shares: a fresh member per side, ratios, option checks. */
import { Member } from '../test/support/member.js';
import type { MemberCommand } from '../test/support/sut.js';

/** tsetcd/etcd rounded to two decimals; NaN when etcd's figure is 0. */
export function ratio(sut: number, etcd: number): number {
  return etcd === 0 ? Number.NaN : Math.round((sut / etcd) * 100) / 100;
}

/** Throws naming the flag when `value` is not an integer in min..max. */
export function checkIntegerOption(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new Error(`--${name} must be an integer in ${min}..${max}, saw ${value}`);
}

/** Starts a fresh single member with `command`, runs `measure` against it, and always removes it. */
export async function onFreshMember<T>(command: MemberCommand, measure: (member: Member) => Promise<T>): Promise<T> {
  const member = await Member.start({ command });
  try {
    return await measure(member);
  } finally {
    await member.destroy();
  }
}
