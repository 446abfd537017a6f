// A small deterministic PRNG for the fuzzer: every case draws from its own stream, derived from (run seed, case
// index), so one case replays alone without running the ones before it.
'use strict';

/** 32-bit integer hash (splitmix32's finaliser). */
function mix(x) {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

class Rng {
  /** @param {...number} keys the run seed, the case index, ... */
  constructor(...keys) {
    let s = 0x2545f491;
    for (const k of keys) s = mix(s ^ mix(k >>> 0) ^ mix(Math.floor(k / 2 ** 32)));
    this.s = s;
  }

  /** A float in [0, 1) (mulberry32). */
  next() {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [0, n). */
  int(n) { return Math.floor(this.next() * n); }
  /** An integer in [lo, hi]. */
  range(lo, hi) { return lo + this.int(hi - lo + 1); }
  chance(p) { return this.next() < p; }
  pick(list) { return list[this.int(list.length)]; }
  /** Picks by weight: entries are [weight, value]. */
  weighted(entries) {
    let r = this.next() * entries.reduce((a, [w]) => a + w, 0);
    for (const [w, v] of entries) if ((r -= w) < 0) return v;
    return entries[entries.length - 1][1];
  }
  /** A normal deviate (Box-Muller). */
  normal() {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

module.exports = { Rng };
