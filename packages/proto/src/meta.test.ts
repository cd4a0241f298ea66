import { describe, expect, test } from 'vitest';
import { ProtoError } from './errors.js';
import {
  decodeRegionLocalState,
  decodeRegionMeta,
  encodeRegionLocalState,
  encodeRegionMeta,
  keyInRegion,
  type RegionMeta,
  RegionState,
} from './meta.js';

const enc = new TextEncoder();
const region: RegionMeta = {
  id: (1n << 63n) + 5n,
  // Decoded bytes are Buffers (Uint8Array subclasses); build the expectation from them too.
  startKey: Buffer.from('a'),
  endKey: Buffer.from('m'),
  epoch: { version: 3n, confVersion: 18446744073709551615n },
  peers: [
    { storeId: 1n, peerId: 101n, learner: false },
    { storeId: 2n, peerId: 201n, learner: true },
  ],
  state: RegionState.Running,
};

describe('region metadata codecs', () => {
  test('round-trip keeps every uint64 exact', () => {
    expect(decodeRegionMeta(encodeRegionMeta(region))).toEqual(region);
    const local = { region, appliedIndex: 7n, appliedTerm: 2n, truncatedIndex: 5n, truncatedTerm: 1n };
    expect(decodeRegionLocalState(encodeRegionLocalState(local))).toEqual(local);
  });

  test('garbage is a typed MalformedMessage error', () => {
    expect(() => decodeRegionMeta(new Uint8Array([0x0a, 0xff, 0xff]))).toThrow(ProtoError);
    expect(() => decodeRegionMeta(Uint8Array.from([0x30, 9]))).toThrow(/not a RegionState/);
  });

  test('a negative id cannot be encoded', () => {
    expect(() => encodeRegionMeta({ ...region, id: -1n })).toThrow(/does not fit a uint64/);
  });

  test('keyInRegion treats empty bounds as infinite', () => {
    expect(keyInRegion(enc.encode('a'), region)).toBe(true);
    expect(keyInRegion(enc.encode('m'), region)).toBe(false);
    expect(keyInRegion(enc.encode('0'), region)).toBe(false);
    const all = { startKey: new Uint8Array(0), endKey: new Uint8Array(0) };
    expect(keyInRegion(enc.encode(''), all)).toBe(true);
    expect(keyInRegion(Uint8Array.from([0xff, 0xff]), all)).toBe(true);
  });
});
