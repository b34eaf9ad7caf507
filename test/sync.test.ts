import { describe, expect, it } from 'vitest';
import { LOCK_ZONE, createShared, lockWordIndex } from '../src/shm/layout.js';
import { LivenessError, Sync, bump, waitWhileEquals } from '../src/locking/sync.js';

const mk = () => createShared({ cpus: 2, memoryBytes: 8 * 2 ** 20, queueSize: 16, ringAlign: 4 });

describe('futex lock', () => {
  it('goes 0 -> 1 -> 0 uncontended and records the holder', () => {
    const v = mk();
    const s = new Sync(v, 1, { spin: 10, waitTimeoutMs: 200 });
    s.lock(LOCK_ZONE);
    expect(v.locks[lockWordIndex(LOCK_ZONE)]).toBe(1);
    expect(s.holds(LOCK_ZONE)).toBe(true);
    s.unlock(LOCK_ZONE);
    expect(v.locks[lockWordIndex(LOCK_ZONE)]).toBe(0);
    expect(s.tryLock(LOCK_ZONE)).toBe(true);
    expect(new Sync(v, 0).tryLock(LOCK_ZONE)).toBe(false);
  });

  it('turns a wait past its bound into a LivenessError naming the holder', () => {
    const v = mk();
    const holder = new Sync(v, 0, { spin: 10, waitTimeoutMs: 200 });
    const waiter = new Sync(v, 1, { spin: 10, waitTimeoutMs: 150 });
    holder.lock(LOCK_ZONE);
    const t0 = performance.now();
    expect(() => waiter.lock(LOCK_ZONE)).toThrow(LivenessError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(() => waiter.lock(LOCK_ZONE)).toThrow(/holder: thread 0/);
    // the waiter marked the word contended (2); the holder's unlock resets it
    holder.unlock(LOCK_ZONE);
    expect(v.locks[lockWordIndex(LOCK_ZONE)]).toBe(0);
  });
});

describe('generation-counter waits', () => {
  it('returns changed, stopped or timed-out, never blocks past the bound', () => {
    const a = new Int32Array(new SharedArrayBuffer(16));
    expect(waitWhileEquals(a, 0, 1, 10, () => false)).toBe('changed');
    expect(waitWhileEquals(a, 0, 0, 30, () => true)).toBe('stopped');
    const t0 = performance.now();
    expect(waitWhileEquals(a, 0, 0, 60, () => false)).toBe('timed-out');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(bump(a, 0)).toBe(1);
    expect(waitWhileEquals(a, 0, 0, 10, () => false, 5)).toBe('changed');
  });
});
