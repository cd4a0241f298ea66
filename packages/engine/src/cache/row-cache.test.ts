import { describe, expect, it } from 'vitest';
import { bloomHash } from '../sstable/bloom.js';
import { RowCache } from './row-cache.js';

const key = (s: string) => Buffer.from(`\u0000${s}`, 'latin1');
const hash = (k: Buffer) => bloomHash(k, 0, k.length);

describe('RowCache', () => {
  it('returns what was cached for the same key only, and forgets on invalidate', () => {
    const cache = new RowCache(1 << 20);
    const a = key('alpha');
    cache.set(a, a.length, hash(a), Buffer.from('1'), 0);
    expect(cache.get(a, a.length, hash(a), 0)).toBeUndefined(); // first sighting: not admitted
    cache.set(a, a.length, hash(a), Buffer.from('1'), 0);
    expect(cache.get(a, a.length, hash(a), 0)?.value.toString()).toBe('1');
    const b = key('beta');
    expect(cache.get(b, b.length, hash(a), 0)).toBeUndefined(); // same slot, other key
    cache.invalidate(hash(a));
    expect(cache.get(a, a.length, hash(a), 0)).toBeUndefined();
    expect(cache.hits).toBe(1);
  });

  it('hides expired rows and copies what it stores', () => {
    const cache = new RowCache(1 << 20);
    const a = key('ttl');
    const value = Buffer.from('v');
    cache.set(a, a.length, hash(a), value, 1000);
    cache.set(a, a.length, hash(a), value, 1000);
    value[0] = 0x78;
    expect(cache.get(a, a.length, hash(a), 999)?.value.toString()).toBe('v');
    expect(cache.get(a, a.length, hash(a), 1000)).toBeUndefined();
  });

  it('stays within its budget, keeping recently hit rows (second chance)', () => {
    const cache = new RowCache(64 * 1024);
    const hot = key('hot');
    cache.set(hot, hot.length, hash(hot), Buffer.alloc(100), 0);
    cache.set(hot, hot.length, hash(hot), Buffer.alloc(100), 0);
    for (let i = 0; i < 2000; i++) {
      const k = key(`k${i}`);
      cache.set(k, k.length, hash(k), Buffer.alloc(100), 0);
      cache.set(k, k.length, hash(k), Buffer.alloc(100), 0);
      cache.get(hot, hot.length, hash(hot), 0);
      expect(cache.size).toBeLessThanOrEqual(64 * 1024);
    }
    expect(cache.get(hot, hot.length, hash(hot), 0)).toBeDefined();
  });

  it('is disabled with a zero budget', () => {
    const cache = new RowCache(0);
    const a = key('a');
    cache.set(a, a.length, hash(a), Buffer.from('1'), 0);
    expect(cache.enabled).toBe(false);
    expect(cache.get(a, a.length, hash(a), 0)).toBeUndefined();
  });
});
