import { describe, expect, test } from 'vitest';
import { RaftAssertionError } from '../errors.js';
import { Inflights } from './inflights.js';

/** Adds messages whose last indexes are `from`..`to`, each of `bytes` bytes. */
function addRange(inf: Inflights, from: number, to: number, bytes = 0): void {
  for (let i = from; i <= to; i++) inf.add(BigInt(i), bytes);
}

describe('Inflights', () => {
  test('add fills the window up to its message capacity', () => {
    const inf = new Inflights(10);
    addRange(inf, 0, 4);
    expect(inf.size).toBe(5);
    expect(inf.full()).toBe(false);
    addRange(inf, 5, 9);
    expect(inf.size).toBe(10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(10n, 0)).toThrow(RaftAssertionError);
  });

  test('freeLE frees every message at or below the index, and nothing else', () => {
    const inf = new Inflights(10);
    addRange(inf, 0, 9);
    inf.freeLE(0n);
    expect(inf.size).toBe(9);
    inf.freeLE(4n);
    expect(inf.size).toBe(5);
    inf.freeLE(4n); // already freed: no-op
    expect(inf.size).toBe(5);
    inf.freeLE(3n); // below the oldest: no-op
    expect(inf.size).toBe(5);
    inf.freeLE(8n);
    expect(inf.size).toBe(1);
    inf.freeLE(100n);
    expect(inf.size).toBe(0);
    expect(inf.full()).toBe(false);
  });

  test('the ring wraps around and keeps order across the wrap', () => {
    const inf = new Inflights(10);
    addRange(inf, 0, 9);
    inf.freeLE(4n); // slots 0-4 free, oldest is 5 at slot 5
    addRange(inf, 10, 14); // wraps into slots 0-4
    expect(inf.full()).toBe(true);
    expect(() => inf.add(15n, 0)).toThrow(RaftAssertionError);
    inf.freeLE(8n); // frees 5-8 (before the wrap)
    expect(inf.size).toBe(6);
    inf.freeLE(12n); // frees 9 (last slot) and 10-12 (after the wrap)
    expect(inf.size).toBe(2);
    inf.freeFirstOne();
    expect(inf.size).toBe(1);
    inf.freeLE(13n);
    expect(inf.size).toBe(1); // 14 is still in flight
    inf.freeLE(14n);
    expect(inf.size).toBe(0);
    // Empty again: the window is reusable from scratch.
    addRange(inf, 20, 29);
    expect(inf.full()).toBe(true);
  });

  test('freeFirstOne frees exactly the oldest message, and is a no-op when empty', () => {
    const inf = new Inflights(4);
    inf.freeFirstOne();
    expect(inf.size).toBe(0);
    inf.add(3n, 1);
    inf.add(7n, 2);
    inf.add(9n, 4);
    inf.freeFirstOne();
    expect(inf.size).toBe(2);
    expect(inf.sizeBytes).toBe(6);
    inf.freeFirstOne();
    expect(inf.sizeBytes).toBe(4);
    // What is left is the message ending at 9.
    inf.freeLE(8n);
    expect(inf.size).toBe(1);
    inf.freeLE(9n);
    expect(inf.size).toBe(0);
  });

  test('a byte limit makes the window full once the bytes in flight reach it', () => {
    const inf = new Inflights(10, 1000);
    inf.add(1n, 400);
    inf.add(2n, 400);
    expect(inf.full()).toBe(false);
    expect(inf.sizeBytes).toBe(800);
    inf.add(3n, 300); // one message may overshoot the limit
    expect(inf.sizeBytes).toBe(1100);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(4n, 1)).toThrow(RaftAssertionError);
    inf.freeLE(1n);
    expect(inf.sizeBytes).toBe(700);
    expect(inf.full()).toBe(false);
    inf.add(4n, 300); // exactly at the limit counts as full
    expect(inf.sizeBytes).toBe(1000);
    expect(inf.full()).toBe(true);
    inf.freeLE(4n);
    expect(inf.sizeBytes).toBe(0);
    expect(inf.size).toBe(0);
  });

  test('without a byte limit only the message count matters', () => {
    const inf = new Inflights(2, 0);
    inf.add(1n, 1e9);
    expect(inf.full()).toBe(false);
    inf.add(2n, 1e9);
    expect(inf.full()).toBe(true);
  });

  test('reset empties the window', () => {
    const inf = new Inflights(3, 100);
    addRange(inf, 1, 3, 5);
    expect(inf.full()).toBe(true);
    inf.reset();
    expect(inf.size).toBe(0);
    expect(inf.sizeBytes).toBe(0);
    expect(inf.full()).toBe(false);
    inf.add(1n, 0); // indexes may start over after a reset
    expect(inf.size).toBe(1);
  });

  test('broken invariants throw RaftAssertionError', () => {
    expect(() => new Inflights(0)).toThrow(RaftAssertionError);
    const inf = new Inflights(5);
    inf.add(5n, 0);
    expect(() => inf.add(5n, 0)).toThrow(/not above the last one 5/);
    expect(() => inf.add(4n, 0)).toThrow(RaftAssertionError);
    expect(inf.size).toBe(1);
  });
});
