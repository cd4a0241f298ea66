import {
  type ConfState,
  decodeConfChangeV2,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  messageTypeName,
  type Snapshot,
} from '@nokv/proto';
import { describeConfChanges } from './confchange/conf-change-v2.js';

// Human-readable renderings used by logs, assertion messages and the scenario tests' expected
// output. Changing a format means regenerating the scenario files.

const entryTypeNames: Record<number, string> = {
  [EntryType.Normal]: 'EntryNormal',
  [EntryType.ConfChange]: 'EntryConfChange',
  [EntryType.ConfChangeV2]: 'EntryConfChangeV2',
};

/** Printable data is shown quoted; anything else as hex. */
export function describeData(data: Uint8Array): string {
  let printable = true;
  for (const b of data) {
    if (b < 0x20 || b > 0x7e) {
      printable = false;
      break;
    }
  }
  return printable
    ? JSON.stringify(Buffer.from(data).toString('latin1'))
    : `0x${Buffer.from(data).toString('hex')}`;
}

/** `1/3 EntryNormal "put x 1"`: term/index, kind and payload. */
export function describeEntry(e: Entry): string {
  let payload: string;
  if (e.type === EntryType.ConfChangeV2) {
    try {
      const cc = decodeConfChangeV2(e.data);
      payload = describeConfChanges(cc) || '(leave joint)';
      if (cc.transition !== 0) payload += ` transition=${cc.transition}`;
    } catch {
      payload = `<undecodable ${describeData(e.data)}>`;
    }
  } else {
    payload = describeData(e.data);
  }
  return `${e.term}/${e.index} ${entryTypeNames[e.type] ?? `EntryType(${e.type})`} ${payload}`;
}

export function describeEntries(entries: readonly Entry[]): string {
  return entries.map(describeEntry).join(', ');
}

export function describeHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function describeConfState(cs: ConfState): string {
  let s = `Voters:[${cs.voters.join(' ')}]`;
  if (cs.votersOutgoing.length > 0) s += ` VotersOutgoing:[${cs.votersOutgoing.join(' ')}]`;
  s += ` Learners:[${cs.learners.join(' ')}]`;
  if (cs.learnersNext.length > 0) s += ` LearnersNext:[${cs.learnersNext.join(' ')}]`;
  if (cs.autoLeave) s += ' AutoLeave:true';
  return s;
}

export function describeSnapshot(s: Snapshot): string {
  return `Index:${s.metadata.index} Term:${s.metadata.term} ConfState:${describeConfState(s.metadata.confState)}`;
}

/** `1->2 MsgApp Term:1 Log:1/2 Commit:2 Entries:[1/3 EntryNormal "x"]`. */
export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${messageTypeName(m.type)} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0n) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${describeEntries(m.entries)}]`;
  if (m.context.length > 0) s += ` Context:${describeData(m.context)}`;
  if (m.snapshot) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  return s;
}
