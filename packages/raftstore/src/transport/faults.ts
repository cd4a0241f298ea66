// Per-link chaos: what happens to messages this store sends to one other store.

/** Faults injected on the link to one store. Probabilities are in [0, 1]. */
export interface LinkFault {
  /** Probability that a message is silently dropped. */
  drop?: number;
  /** Hold every message this long before queueing it (per-link order is kept). */
  delayMs?: number;
  /** Probability that a message is delivered twice. */
  duplicate?: number;
  /** Drop everything (a partition), silently. */
  block?: boolean;
}

/** A small deterministic PRNG (mulberry32) for reproducible chaos: `random: seededRandom(42)`. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkProbability(p: number | undefined, name: string): void {
  if (p === undefined) return;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`link fault ${name} = ${p} is not a probability`);
}

export function validateLinkFault(f: LinkFault): LinkFault {
  checkProbability(f.drop, 'drop');
  checkProbability(f.duplicate, 'duplicate');
  if (f.delayMs !== undefined && !(f.delayMs >= 0 && Number.isFinite(f.delayMs))) {
    throw new RangeError(`link fault delayMs = ${f.delayMs} must be a finite number >= 0`);
  }
  return { ...f };
}
