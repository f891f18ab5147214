/**
 * The bytes of a proposal inside a Raft entry: msgpack of {origin, id, body}. `origin` is the
 * proposing member, so only that member answers the waiting client when the entry is applied.
 */
import { Packr } from 'msgpackr';
import type { Proposal } from './types.js';

export interface Envelope extends Proposal {
  origin: bigint;
}

const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });

export function encodeProposal(envelope: Envelope): Uint8Array {
  return packr.pack(envelope);
}

/** Decodes entry data written by encodeProposal; byte fields come back as Buffers. */
export function decodeProposal(data: Uint8Array): Envelope {
  return packr.unpack(data) as Envelope;
}
