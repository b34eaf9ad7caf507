// Shared test fixtures: a one-thread world over a fresh shared buffer.
import { Zone, type ZoneOptions, DEFAULT_ZONE_OPTIONS } from '../src/mm/buddy.js';
import { type Config, DEFAULT_CONFIG, hintTracks } from '../src/sim/config.js';
import { HDR_RUN_STATE, RUN_RUNNING, createShared, threadIds, type Views } from '../src/shm/layout.js';
import { Sync } from '../src/locking/sync.js';

export interface World {
  views: Views;
  zone: Zone;
  sync: Sync;
  cfg: Config;
}

/** A zone of `memoryBytes` with `cpus` CPUs, initialised, run state RUNNING, operated by thread `thread`. */
export function makeWorld(opts: { memoryBytes?: number; cpus?: number; zone?: Partial<ZoneOptions>; thread?: number; cfg?: Partial<Config> } = {}): World {
  const cfg: Config = { ...DEFAULT_CONFIG, seed: 1, memoryBytes: opts.memoryBytes ?? 16 * 2 ** 20, cpus: opts.cpus ?? 2, ...opts.cfg };
  const views = createShared({ cpus: cfg.cpus, memoryBytes: cfg.memoryBytes, queueSize: cfg.queueSize, ringAlign: cfg.ringAlign, hintTrack: hintTracks(cfg) });
  const sync = new Sync(views, opts.thread ?? threadIds(cfg.cpus).main, { spin: 10, waitTimeoutMs: 500 });
  // The buddy lists alone unless a test asks for the per-CPU lists (the simulator's default is pcp on).
  const zone = new Zone(views, sync, { ...DEFAULT_ZONE_OPTIONS, pcp: false, ...opts.zone });
  zone.init();
  views.header[HDR_RUN_STATE] = RUN_RUNNING;
  return { views, zone, sync, cfg };
}

/** A Zone over the same buffer acting as another thread. */
export function zoneAs(w: World, thread: number, zopts: Partial<ZoneOptions> = {}): Zone {
  return new Zone(w.views, new Sync(w.views, thread, { spin: 10, waitTimeoutMs: 500 }), { ...w.zone.opts, ...zopts });
}
