// The one module that owns every byte offset in the shared buffer (docs/DESIGN.md §3).
//
// `computeLayout(params)` is pure: every thread calls it with the same
// parameters and gets the same map. `createShared` allocates the buffer and
// writes the header; `openShared` (in a worker) checks the header against its
// own layout, so a thread that was handed a different configuration aborts at
// start-up instead of corrupting memory.
//
// Regions, in buffer order (each 64-byte aligned, guest memory 4 KiB aligned):
//   header      Int32 words: magic, layout version, config echo, run state,
//               generation counters (HDR_* below).
//   locks       one 64-byte line per lock instance (LOCK_*): the futex word,
//               the last holder, the lock class, the holder's call site (lockstat).
//               Own line each: no false sharing.
//   lockstat    per lock class, per thread, LOCKSTAT_SLOT_BYTES of Float64
//               counters (LS_* fields; written by the owning thread only, with
//               plain stores; read by main at the end, see src/locking/lockstat.ts).
//   pages       struct page array, PAGE_WORDS Int32 per 4 KiB frame (16 bytes).
//   zone        ZONE_* words: free_area[order] {head, tail, nr_free}, free-page
//               count, watermarks, reported counters; then one 64-byte line per
//               CPU for its per-CPU (pcp) order-0 list.
//   vq          the split virtqueue (descriptor table, avail ring, used ring)
//               exactly as virtio 1.2 §2.7 lays it out (see src/virtio/ring.ts).
//   device      device config space, feature words, kick/interrupt doorbells
//               and device counters (DEV_* words).
//   reporting   reporter state machine and counters (REP_* words).
//   host        host view: resident bitmap then discarded bitmap (1 bit per page each),
//               then one Int32 lock word per 2 MiB (the host's page-table lock
//               for --host-thp faults, src/mm/memory.ts).
//   metrics     per-thread Float64 metric slots (METRIC_* fields), 64-byte padded.
//   violations  a small shared record of the first oracle violation (VIO_*).
//   sched       the seeded scheduler (--sched, src/sched/): control words,
//               logical clock, per-thread run/wait records, decision and
//               event-digest logs of `schedLogSteps` entries. Empty (0 bytes)
//               when --sched is off. Its parts: schedParts below; the
//               words within each part: src/sched/region.ts.
//   trace       --trace: one event ring per thread (fixed size, overwritten
//               oldest first) and a small control header; TRACE_* below, the
//               writer and reader in src/locking/trace.ts. Empty (0 bytes)
//               when --trace is off.
//   hinttrack   --hinting hint with --hint-device qemu or --hint-uffd-wp: one
//               byte per page in each of HINT_TRACK_MAPS maps (HTM_* below):
//               the host's write tracking (userfaultfd write-protect, KVM
//               dirty log) and the migration oracle's record of live data.
//               Empty (0 bytes) otherwise.
//   guest       pages * 4096 bytes of real guest memory.

import { HIST_BUCKETS } from '../base/hist.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Orders 0..MAX_ORDER-1 as in Linux before 6.4 (MAX_ORDER 11: largest block 4 MiB). */
export const MAX_ORDER = 11;
/** pageblock_order (HPAGE_PMD_ORDER on x86-64 with 4 KiB pages): 2 MiB, the THP size and the default report order. */
export const PAGEBLOCK_ORDER = 9;
/** PAGE_ALLOC_COSTLY_ORDER: orders above it are costly; pcp lists hold orders up to it (and pageblock order). */
export const PAGE_ALLOC_COSTLY_ORDER = 3;
export const LAYOUT_MAGIC = 0x42414c4e; // 'BALN'
export const LAYOUT_VERSION = 11; // 11: --cpu-slots header words and region; 4: lockstat slot layout (LS_*), LOCK_SITE; 5: sched region; 6: pcp lists per order, aeration boundaries; 7: trace region; 8: host THP fault locks, DEV_TLB_FLUSH_GEN, DEV_HOST_FILL; 9: hinttrack region, uffd.lock; 10: device faults' reset words, tolerated-input counters, wake marks, the host cost words moved to their own line (device region 144 words)
export const CACHE_LINE = 64;
export const NIL = -1; // "no page" in free-list links

// ---- header (Int32 words) ----
export const HDR_MAGIC = 0;
export const HDR_VERSION = 1;
export const HDR_CPUS = 2;
export const HDR_PAGES = 3;
/** Run state: a generation-style word main bumps and notifies; see RUN_*. */
export const HDR_RUN_STATE = 4;
/** Number of roles that have opened the buffer and are ready. */
export const HDR_READY = 5;
/** Bumped (and notified) whenever the run state changes: the wait word for idle roles. */
export const HDR_STATE_GEN = 6;
export const HDR_QUEUE_SIZE = 7;
/** Bumped (Atomics.add) by each role after its last lockstat write: the seq-cst
 *  RMW publishes the plain stores to its lockstat slots; main Atomics.loads it
 *  before it reads the slots (src/locking/lockstat.ts). */
export const HDR_LOCKSTAT_PUBLISHED = 8;
/** --cpu-slots (src/locking/cpu-slots.ts): the next ticket, and slots released so far; ticket t runs once t < released + N. */
export const HDR_SLOT_TICKET = 9;
export const HDR_SLOT_RELEASED = 10;
/** --cpu-slots: CPUs holding a slot now (an assertion: never more than N). */
export const HDR_SLOT_HOLDERS = 11;
export const HDR_WORDS = 16;
/** The cpu-slots region: one wake word per CPU, then the ticket ring (2 * cpus words: at most cpus tickets are outstanding). */
export const SLOT_WAKE_BASE = 0;
export const slotMapBase = (cpus: number) => cpus;
export const slotMapSize = (cpus: number) => 2 * cpus;
export const slotWords = (cpus: number) => slotMapBase(cpus) + slotMapSize(cpus);

export const RUN_INIT = 0;
export const RUN_RUNNING = 1;
/** Workload stops; reporter and device keep serving (settling). */
export const RUN_SETTLING = 2;
/** Everything stops. */
export const RUN_STOPPING = 3;
/** A violation or failure was found: everyone stops at once. */
export const RUN_ABORT = 4;

// ---- locks (one cache line each, Int32 words within the line) ----
export const LOCK_WORD = 0; // futex word: 0 unlocked, 1 locked, 2 locked with waiters
export const LOCK_OWNER = 1; // thread id of the current/last holder (+1; 0 = never held)
export const LOCK_CLASS = 2; // LOCKCLASS_* of the instance, stamped by createShared
/** Call site (SITE_*) of the current holder: a plain store by the holder right
 *  after it acquires the lock, only with lockstat on; a waiter reads it when it
 *  contends (the kernel's lock->ip, source of lock_stat's contending points).
 *  Racy by design: statistics, never used for correctness. */
export const LOCK_SITE = 3;
/**
 * Strict wake-ups (docs/DESIGN.md §4): releases that found waiters (the word
 * was 2), counted before the release's store of 0, and those releases'
 * wake-ups, counted after their Atomics.notify. A waiter whose slice ran out
 * while the lock was free checks that the second caught up with the first.
 */
export const LOCK_REL_WAITERS = 4;
export const LOCK_REL_WOKEN = 5;
export const LOCK_LINE_WORDS = CACHE_LINE / 4;

/** Lock classes (lock_stat "class name"). */
export const LOCK_CLASSES = ['zone.lock', 'balloon_lock', 'vq.lock', 'pcp.lock', 'uffd.lock'] as const;
export type LockClassName = (typeof LOCK_CLASSES)[number];
export const LOCKCLASS_ZONE = 0;
export const LOCKCLASS_BALLOON = 1;
export const LOCKCLASS_VQ = 2;
export const LOCKCLASS_PCP = 3;
/** The host's userfaultfd handler (--hint-uffd-wp serialized): write-protect faults and the hint device's check+discard, one at a time. */
export const LOCKCLASS_UFFD = 4;

/** Lock instances: fixed ones, then one pcp lock per CPU. */
export const LOCK_ZONE = 0;
export const LOCK_BALLOON = 1;
export const LOCK_VQ = 2;
export const LOCK_UFFD = 3;
export const LOCK_PCP0 = 4;

/** Lock class of lock instance `lock` (fixed instances name their class; the rest are pcp locks). */
export const lockClassOf = (lock: number): number => (lock === LOCK_UFFD ? LOCKCLASS_UFFD : lock < LOCK_PCP0 ? lock : LOCKCLASS_PCP);
/** A lock instance's name: its class, and the CPU for a pcp lock (`pcp.lock[3]`). */
export const lockName = (lock: number): string => (lock < LOCK_PCP0 ? LOCK_CLASSES[lockClassOf(lock)] : `${LOCK_CLASSES[LOCKCLASS_PCP]}[${lock - LOCK_PCP0}]`);

// ---- lockstat slot: Float64 fields per (lock class, thread), see src/locking/lockstat.ts ----
// Only the owning thread writes its slot (plain stores, no atomics: the hot
// path stays cheap); main sums the slots of every thread after the run.
// 4096 bytes: 96 counter words + two HIST_BUCKETS (160) histograms = 416 Float64.
export const LOCKSTAT_SLOT_BYTES = 4096;
export const LS_ACQUISITIONS = 0; // lock + successful trylock
export const LS_CONTENTIONS = 1; // acquisitions that had to wait (fast-path CAS failed)
export const LS_CON_BOUNCES = 2; // contentions while another thread held the lock (lock_stat con-bounces)
export const LS_ACQ_BOUNCES = 3; // acquisitions whose previous holder was another thread (acq-bounces)
export const LS_WAIT_NS_MIN = 4; // valid when LS_CONTENTIONS > 0
export const LS_WAIT_NS_MAX = 5;
export const LS_WAIT_NS_TOTAL = 6;
export const LS_HOLDS = 7; // releases, i.e. hold-time samples
export const LS_HOLD_NS_MIN = 8; // valid when LS_HOLDS > 0
export const LS_HOLD_NS_MAX = 9;
export const LS_HOLD_NS_TOTAL = 10;
/** Call-site ids tracked per slot (SITE_* from src/mm/buddy.ts and later modules); larger ids count as site 0. */
export const LOCKSTAT_SITES = 32;
/** [LOCKSTAT_SITES] contentions by the waiter's site (lock_stat contention points). */
export const LS_CONTENTION_POINT = 32;
/** [LOCKSTAT_SITES] contentions by the site of the holder at the time (lock_stat contending points). */
export const LS_CONTENDING_POINT = LS_CONTENTION_POINT + LOCKSTAT_SITES;
/** [HIST_BUCKETS] wait-time histogram in ns (src/base/hist.ts: log2 with 4 sub-buckets). */
export const LS_WAIT_HIST = 96;
/** [HIST_BUCKETS] hold-time histogram in ns. */
export const LS_HOLD_HIST = LS_WAIT_HIST + HIST_BUCKETS;

// ---- struct page (Int32 words per page) ----
export const PAGE_WORDS = 4;
export const PG_FLAGS = 0; // PG_* bits, order in bits 24..27
export const PG_NEXT = 1; // free-list link: next pfn or NIL
export const PG_PREV = 2; // free-list link: prev pfn or NIL
export const PG_OWNER = 3; // thread id + 1 of the allocator/isolator; 0 = none

// ---- zone (Int32 words) ----
export const FA_HEAD = 0;
export const FA_TAIL = 1;
export const FA_NR_FREE = 2;
export const FA_NR_REPORTED = 3; // PageReported (aeration v1: PageAerated) blocks on the list
/**
 * Aeration v1's boundary (mm/aeration.c boundary[order][mt]): while
 * ZONE_AERATION_ACTIVE, the first aerated block of this list; raw blocks
 * freed "to the tail" go in front of it, so the aerated blocks stay one run
 * at the list's end. NIL when not active (src/mm/aeration.ts).
 */
export const FA_BOUNDARY = 4;
export const FA_WORDS = 5;
export const ZONE_FREE_AREA = 0; // MAX_ORDER * FA_WORDS words
export const ZONE_FREE_PAGES = MAX_ORDER * FA_WORDS; // pages in buddy free lists
export const ZONE_WMARK_MIN = ZONE_FREE_PAGES + 1;
export const ZONE_WMARK_LOW = ZONE_FREE_PAGES + 2;
export const ZONE_WMARK_HIGH = ZONE_FREE_PAGES + 3;
export const ZONE_MANAGED = ZONE_FREE_PAGES + 4;
export const ZONE_ISOLATED_PAGES = ZONE_FREE_PAGES + 5; // pages isolated by the reporter
export const ZONE_REPORTED_PAGES = ZONE_FREE_PAGES + 6; // free pages with PageReported
export const ZONE_BALLOON_PAGES = ZONE_FREE_PAGES + 7; // pages held by the hint-mode balloon
/** Free page hint (src/guest/free-page-hint.ts): head pfn of the balloon's free_page_list, NIL when empty. Only blocks the
 *  device has acknowledged (used) are on it; they are linked through PG_NEXT. Zone lock held for every access. */
export const ZONE_BALLOON_LIST_HEAD = ZONE_FREE_PAGES + 8;
/** Blocks on the balloon's free_page_list (num_free_page_blocks minus those still in flight). Zone lock held. */
export const ZONE_BALLOON_LIST_BLOCKS = ZONE_FREE_PAGES + 9;
/** pcp->batch and pcp->high, the same for every CPU (zone_batchsize, zone_highsize; src/mm/buddy.ts). */
export const ZONE_PCP_BATCH = ZONE_FREE_PAGES + 10;
export const ZONE_PCP_HIGH = ZONE_FREE_PAGES + 11;
/** Aeration v1 zone flags (ZONE_AERATION_REQUESTED / ZONE_AERATION_ACTIVE bits of zone->flags), 0 or 1, zone lock held. */
export const ZONE_AERATION_REQUESTED = ZONE_FREE_PAGES + 12;
export const ZONE_AERATION_ACTIVE = ZONE_FREE_PAGES + 13;
export const ZONE_WORDS_FIXED = 96;
// per-CPU pcp line (Int32 words), one 64-byte line per CPU (struct per_cpu_pages)
/** Pages on all of this CPU's pcp lists (pcp->count). */
export const PCP_COUNT = 0;
/** pcp->free_factor: doubles the drain batch on frees without allocations in between. */
export const PCP_FREE_FACTOR = 1;
/** List i (pindex, see pcpListOf in src/mm/buddy.ts): head pfn at PCP_LISTS + 2i, tail pfn at PCP_LISTS + 2i + 1 (NIL: empty). */
export const PCP_LISTS = 2;
/** pcp lists per CPU: orders 0..PAGE_ALLOC_COSTLY_ORDER (3) and pageblock order (one migratetype modelled). */
export const NR_PCP_LISTS = 5;
export const PCP_LINE_WORDS = CACHE_LINE / 4;

// ---- device (Int32 words) ----
// config space mirror of struct virtio_balloon_config (le32 fields)
export const DEV_NUM_PAGES = 0;
export const DEV_ACTUAL = 1;
export const DEV_FREE_PAGE_HINT_CMD_ID = 2;
export const DEV_POISON_VAL = 3;
export const DEV_FEATURES_OFFERED = 4;
export const DEV_FEATURES_NEGOTIATED = 5;
/** Index of the reporting (or aeration hinting) queue as the device numbers it (--vq-numbering, src/host/balloon-device.ts). */
export const DEV_VQ_INDEX = 6;
/** Queue index the driver wrote with its last notification (VIRTIO_PCI_QUEUE_NOTIFY); checked by the device. */
export const DEV_NOTIFY_QUEUE = 7;
/** Driver->device doorbell: a counter bumped and notified by virtqueue_kick. */
export const DEV_KICK = 16;
/** Device->driver interrupt: a counter bumped and notified on each used push. */
export const DEV_INTERRUPT = 32;
/** Config-change interrupt (hint mode: new command id). */
export const DEV_CONFIG_GEN = 48;
/** Free page hint (src/host/free-page-hint-device.ts): the device's hint status (QEMU free_page_hint_status, HINT_S_*). */
export const DEV_HINT_STATUS = 8;
/** Free page hint: the command id of the run the device is in (START) or last asked for. */
export const DEV_HINT_RUN_ID = 9;
/** Free page hint, --hint-uffd-wp: 1 while guest memory is write-protected for a hint run (vCPU writes to untracked pages fault). */
export const DEV_HINT_WP_ARMED = 10;
/** Device status: 0 down, 1 serving. */
export const DEV_STATUS = 64;
/**
 * Host cost model (src/mm/host-costs.ts): bumped (Atomics.add) by the host
 * after every MADV_DONTNEED that unmapped something, standing for
 * kvm_flush_remote_tlbs(); each CPU pays one TLB-flush interrupt per bump at
 * its next allocation (src/sim/workload.ts). Own cache line: written by the
 * device, read by every CPU.
 */
export const DEV_TLB_FLUSH_GEN = 128;
/**
 * The byte a fresh host page holds (0; poison_val with --poison-policy fill
 * and PAGE_POISON negotiated): written once at set-up, before any role
 * runs; read by GuestMemory for faults and for reads of unbacked pages.
 */
export const DEV_HOST_FILL = 129;
/** Device counters (Int32). */
export const DEV_CHAINS = 65;
export const DEV_BAD_BASE = 66; // bad guest input counters by kind, BAD_KINDS order (src/host/balloon-device.ts), up to DEV_TOLERATED_BASE
/** Tolerated guest input (a driver-rule break QEMU and Firecracker act on anyway) by kind, TOLERATED_KINDS order (src/host/balloon-device.ts). */
export const DEV_TOLERATED_BASE = 96;
export const DEV_TOLERATED_WORDS = 8;
/**
 * Device reset (--device-faults reset, docs/DESIGN.md §17): the driver's
 * status writes. Odd: the driver reset the device (virtio_reset_device());
 * the device forgets its queue state, acknowledges on DEV_RESET_ACK and
 * leaves the ring alone. Even again: DRIVER_OK on a freshly built ring.
 */
export const DEV_RESET_REQ = 104;
/** Bumped (and notified) by the device when it has reset its queue: the driver's wait word while it resets. */
export const DEV_RESET_ACK = 112;
export const DEV_RESET_ACK_WOKEN = DEV_RESET_ACK + 8;
export const DEV_WORDS = 144; // 9 cache lines: the host cost words have the last to themselves

// ---- reporting (Int32 words) ----
export const REP_STATE = 0; // PAGE_REPORTING_IDLE / REQUESTED / ACTIVE
export const REP_REQUEST_GEN = 16; // bumped by the free path on a request; reporter waits on it
/** Aeration v1 (src/mm/aeration.ts): aerator_dev_info->refcnt, requesting zones plus one while the worker cycles. */
export const REP_AER_REFCNT = 17;
/** Aeration v1: the driver's hint buffer page, pfn + 1 (0: none); read by the settle check after the driver freed it. */
export const REP_AER_HINT_PFN1 = 18;
/** 1 when the reporter's last pass ended on a failed report (--device-faults report-error): page_reporting_process() then leaves the rest for the next request (the settle check's excuse). */
export const REP_LAST_PASS_FAILED = 20;
/** The hostile guest's arena (--hostile, src/check/hostile.ts): its first pfn + 1 (0: none); freed when the driver stops, like the aeration hint page. */
export const REP_HOSTILE_ARENA_PFN1 = 21;
/** Free page hint driver (src/guest/free-page-hint.ts): HINT_DRV_* state of the reporter thread's driver (main reads it to settle). */
export const REP_HINT_DRIVER_STATE = 32;
/** Free page hint: bumped (and notified) by the driver after it moves acknowledged blocks onto the
 *  balloon's free_page_list; a CPU in the shrinker waits on it for blocks still in flight. */
export const REP_HINT_LIST_GEN = 48;
export const REP_WORDS = 64;

/**
 * Strict wake-ups (docs/DESIGN.md §4): every event wait word (a generation
 * counter bumped by bump() in src/locking/sync.ts) has a companion word
 * WAKE_MARK words after it, in the same array and cache line, holding the
 * highest counter value whose Atomics.notify has been issued. A waiter whose
 * wait slice ran out although the word had moved knows from it whether the
 * wake-up was on its way or never issued (a lost wake-up).
 */
export const WAKE_MARK = 8;
export const HDR_STATE_GEN_WOKEN = HDR_STATE_GEN + WAKE_MARK;
export const DEV_KICK_WOKEN = DEV_KICK + WAKE_MARK;
export const DEV_INTERRUPT_WOKEN = DEV_INTERRUPT + WAKE_MARK;
export const DEV_CONFIG_GEN_WOKEN = DEV_CONFIG_GEN + WAKE_MARK;
export const REP_REQUEST_GEN_WOKEN = REP_REQUEST_GEN + WAKE_MARK;
export const REP_HINT_LIST_GEN_WOKEN = REP_HINT_LIST_GEN + WAKE_MARK;

// ---- metrics (Float64 per thread) ----
export const METRIC_SLOT_BYTES = 2048; // 256 Float64 fields, 64-byte aligned by construction
export const METRIC_OPS = 0;
export const METRIC_ALLOCS = 1;
export const METRIC_FREES = 2;
export const METRIC_ALLOC_FAILS = 3;
export const METRIC_PAGES_TOUCHED = 4;
export const METRIC_REFAULTS = 5;
export const METRIC_ALLOC_NS_TOTAL = 6;
export const METRIC_ALLOC_SAMPLES = 7;
export const METRIC_ALLOC_NS_MAX = 8;
export const METRIC_LOOPS = 9;
export const METRIC_STAMP_CHECKS = 10;
export const METRIC_POISON_CHECKS = 11;
export const METRIC_OWNERSHIP_CHECKS = 12;
export const METRIC_OS_TID = 13; // the role's OS thread id, for main's schedstat snapshots (src/sim/cputime.ts)
export const METRIC_HOST_FAULTS = 14; // host faults on first touch (a page the host never backed); refaults are METRIC_REFAULTS
export const METRIC_THP_FALLBACKS = 15; // --thp always: 2 MiB faults that fell back to order 0 (no order-9 block)
export const METRIC_EXTRA = 16; // role-specific counters from here (see the role's module)
export const METRIC_HIST_BASE = 64; // alloc latency histogram (src/base/hist.ts), HIST_BUCKETS Float64 counters
/**
 * Fault injection (--inject, src/check/inject.ts): how many times each
 * injected code path ran in this thread, one Float64 per injection at
 * METRIC_INJECTED + INJECTED_*; main sums every thread's slot. A run whose
 * injection never ran tested nothing, and says so (exit 1). Plain stores by
 * the owning thread; main reads them after every role stopped.
 */
export const METRIC_INJECTED = METRIC_HIST_BASE + HIST_BUCKETS;
export const INJECTED_NO_ISOLATE = 0;
export const INJECTED_EARLY_PUTBACK = 1;
export const INJECTED_NO_REPORTED_SKIP = 2;
export const INJECTED_KEEP_REPORTED_ON_MERGE = 3;
export const INJECTED_NO_ZONE_LOCK = 4;
export const INJECTED_POISON_UNAWARE = 5;
export const INJECTED_LOST_WAKEUP = 6;
export const INJECTED_NO_ACK_WAIT = 7;
export const INJECTED_DEVICE_DOUBLE_USED = 8;
export const INJECTED_SLOTS = 16;
/** Strict waits this thread ended by a wake-up it verified (the lost-wakeup oracle's runs, docs/DESIGN.md §4). */
export const METRIC_WAKE_CHECKS = METRIC_INJECTED + INJECTED_SLOTS;
/** Device faults that acted, by kind (DEVICE_FAULT_KINDS order, src/virtio/device-faults.ts), in the slot of the side that rolled them. */
export const METRIC_FAULTS = METRIC_WAKE_CHECKS + 1;
export const FAULT_SLOTS = 6;

// ---- violations (Int32 words): the first violation's location, details go in results ----
export const VIO_COUNT = 0;
export const VIO_WORDS = 16;

export interface LayoutParams {
  cpus: number;
  memoryBytes: number;
  queueSize: number;
  ringAlign: number;
  /** The hinttrack region (hint mode with --hint-device qemu or --hint-uffd-wp): true gives it one byte per page per map. */
  hintTrack?: boolean;
  /** Steps the scheduler's decision log holds (0: --sched off, no sched region). */
  schedLogSteps?: number;
  /** Events each thread's trace ring holds (0: --trace off, no trace region). */
  traceEvents?: number;
}

export interface Region {
  offset: number;
  bytes: number;
}

export interface Layout {
  params: LayoutParams;
  pages: number;
  threads: number; // cpus + reporter + device + main
  locks: number;
  header: Region;
  locksRegion: Region;
  lockstat: Region;
  structPages: Region;
  zone: Region;
  pcpOffsetWords: number; // Int32 index (relative to zone) of cpu 0's pcp line
  vq: Region;
  vqDescOffset: number; // absolute byte offsets of the three vring parts
  vqAvailOffset: number;
  vqUsedOffset: number;
  device: Region;
  reporting: Region;
  hostResident: Region;
  hostWords: number; // Int32 words per host bitmap
  /** Int32 index within views.hostResident of the first THP fault lock word (one per 2 MiB, after both bitmaps). */
  hostHugeLockBase: number;
  metrics: Region;
  violations: Region;
  /** The scheduler's region (its parts: schedParts; 0 bytes with --sched off). */
  sched: Region;
  schedParts: SchedParts;
  /** The trace rings (traceBytes; 0 bytes with --trace off). */
  trace: Region;
  /** Free page hint's per-page maps (HINT_TRACK_MAPS x pages bytes; 0 bytes unless LayoutParams.hintTrack). */
  hintTrack: Region;
  /** --cpu-slots (src/locking/cpu-slots.ts): SLOT_WAKE_BASE + cpu, one wake word per CPU; slotMapBase(cpus) + ticket mod slotMapSize(cpus), the CPU (+1) holding that ticket. */
  cpuSlots: Region;
  guest: Region;
  totalBytes: number;
}

// ---- sched region parts (--sched; fields within them: src/sched/region.ts) ----
/** Int32 control words. */
export const SCHED_CTL_WORDS = 64;
/** Float64 clock and phase words. */
export const SCHED_F_WORDS = 64;
/** Int32 words per thread. */
export const SCHED_T_WORDS = 16;
/** Int32 checkpoints a replayed schedule string carries (at most). */
export const SCHED_EXPECTED_CHECKPOINTS = 64;
/** A recorded checkpoint (trace hash) every this many steps. */
export const SCHED_CHECKPOINT_STEPS = 1024;

/** Byte offsets (relative to the sched region) and the size of its parts, all 64-byte aligned. */
export interface SchedParts {
  ctl: number; // SCHED_CTL_WORDS Int32
  f: number; // SCHED_F_WORDS Float64
  th: number; // threads * SCHED_T_WORDS Int32
  dl: number; // threads Float64: each thread's logical deadline
  expCp: number; // SCHED_EXPECTED_CHECKPOINTS Int32
  cps: number; // logSteps / SCHED_CHECKPOINT_STEPS Int32: recorded checkpoints
  decisions: number; // logSteps Uint8
  digests: number; // logSteps Uint8
  bytes: number;
}

/** The sched region's parts for `threads` threads and a log of `logSteps` steps (0: no region, 0 bytes). */
export function schedParts(threads: number, logSteps: number): SchedParts {
  if (logSteps > 0 && logSteps % SCHED_CHECKPOINT_STEPS !== 0) throw new Error(`layout: schedLogSteps must be a multiple of ${SCHED_CHECKPOINT_STEPS}`);
  let off = 0;
  const take = (bytes: number) => {
    const o = off;
    off += Math.ceil(bytes / CACHE_LINE) * CACHE_LINE;
    return o;
  };
  if (logSteps <= 0) return { ctl: 0, f: 0, th: 0, dl: 0, expCp: 0, cps: 0, decisions: 0, digests: 0, bytes: 0 };
  const parts = {
    ctl: take(SCHED_CTL_WORDS * 4),
    f: take(SCHED_F_WORDS * 8),
    th: take(threads * SCHED_T_WORDS * 4),
    dl: take(threads * 8),
    expCp: take(SCHED_EXPECTED_CHECKPOINTS * 4),
    cps: take((logSteps / SCHED_CHECKPOINT_STEPS) * 4),
    decisions: take(logSteps),
    digests: take(logSteps),
  };
  return { ...parts, bytes: off };
}

// ---- trace region (--trace; writer and reader: src/locking/trace.ts) ----
// A control header, then one ring per thread: TRACE_RING_HDR_WORDS Float64
// (the count of events the thread has written, a plain store after each
// event) and `events` records of TRACE_EVENT_WORDS Float64. The owner writes
// its ring with plain stores, oldest record overwritten first; main reads the
// rings after the roles returned (each role's Atomics.add on TRACE_PUBLISHED
// after its last event publishes them, as lockstat's slots are published).
/** Bytes of the control header: Int32 words 0..7, then Float64 words 4..7. */
export const TRACE_HDR_BYTES = 64;
/** Int32 word: bumped (Atomics.add) by each thread after its last trace event. */
export const TRACE_PUBLISHED = 0;
/** Float64 word: the run's time origin, performance.timeOrigin + performance.now() in ms, written by main before any role starts. */
export const TRACE_ORIGIN_MS = 4;
export const TRACE_RING_HDR_WORDS = 8;
/** Float64 word of a ring's header: events written so far (all of them; the ring keeps the last `events`). */
export const TRACE_RING_COUNT = 0;
/** Float64 words per event: timestamp and duration in microseconds since the origin (duration -1: an instant), kind, three arguments. */
export const TRACE_EVENT_WORDS = 6;
export const TE_TS_US = 0;
export const TE_DUR_US = 1;
export const TE_KIND = 2;
export const TE_A = 3;
export const TE_B = 4;
export const TE_C = 5;

/** Bytes of the trace region for `threads` rings of `events` events (0 events: no region). */
export function traceBytes(threads: number, events: number): number {
  if (events <= 0) return 0;
  return TRACE_HDR_BYTES + threads * (TRACE_RING_HDR_WORDS + events * TRACE_EVENT_WORDS) * 8;
}

/** Float64 index (within views.trace, which starts after the control header) of `thread`'s ring header. */
export const traceRingBase = (thread: number, events: number) => thread * (TRACE_RING_HDR_WORDS + events * TRACE_EVENT_WORDS);

// ---- hinttrack region (free page hint: --hint-device qemu, --hint-uffd-wp) ----
// One byte per page per map, map m at byte m * pages. Bytes are written and
// read with Atomics (Uint8Array) by the vCPU that writes a page and by the
// device thread; src/host/hint-tracking.ts and src/check/migration.ts use them.
/** userfaultfd write-protect tracking: 1 = written since the hint run armed write protection (Firecracker + UFFD). */
export const HTM_UFFD_WRITTEN = 0;
/** KVM dirty log: 1 = written since the last migration bitmap sync (QEMU). */
export const HTM_DIRTY_LOG = 1;
/** The migration oracle's record (src/check/migration.ts): 1 = holds data the CPU that holds the page wrote (set on a write, cleared when it frees the page) (QEMU). */
export const HTM_LIVE = 2;
export const HINT_TRACK_MAPS = 3;

/** Thread ids: CPUs are 0..cpus-1, then the reporter, the device and main. */
export const threadIds = (cpus: number) => ({ reporter: cpus, device: cpus + 1, main: cpus + 2 });

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** vring_size() for the split ring, per include/uapi/linux/virtio_ring.h. */
export function vringSize(num: number, align: number): number {
  const descAndAvail = 16 * num + 2 * (3 + num);
  return alignUp(descAndAvail, align) + 2 * 3 + 8 * num;
}

export function computeLayout(params: LayoutParams): Layout {
  const { cpus, memoryBytes, queueSize, ringAlign } = params;
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`layout: cpus must be >= 1, got ${cpus}`);
  if (memoryBytes % (PAGE_SIZE * 1) !== 0 || memoryBytes <= 0) throw new Error(`layout: memory must be a positive multiple of 4096`);
  if ((queueSize & (queueSize - 1)) !== 0 || queueSize < 1 || queueSize > 32768) throw new Error(`layout: queue size must be a power of 2 <= 32768`);
  const pages = memoryBytes / PAGE_SIZE;
  const threads = cpus + 3;
  const locks = LOCK_PCP0 + cpus;
  let off = 0;
  const take = (bytes: number, align = CACHE_LINE): Region => {
    off = alignUp(off, align);
    const r = { offset: off, bytes };
    off += bytes;
    return r;
  };
  const header = take(HDR_WORDS * 4);
  const locksRegion = take(locks * CACHE_LINE);
  const lockstat = take(LOCK_CLASSES.length * threads * LOCKSTAT_SLOT_BYTES);
  const structPages = take(pages * PAGE_WORDS * 4);
  const zoneBytes = ZONE_WORDS_FIXED * 4 + cpus * CACHE_LINE;
  const zone = take(zoneBytes);
  // The vring is laid out at ringAlign (at least 4096 so a legacy layout with
  // align 4096 starts on a page like a real one): desc at 0, avail right after
  // the descriptors, used at the next ringAlign boundary, as vring_init() does.
  const vqBytes = vringSize(queueSize, ringAlign);
  const vq = take(vqBytes, Math.max(ringAlign, 4096));
  const vqDescOffset = vq.offset;
  const vqAvailOffset = vq.offset + 16 * queueSize;
  const vqUsedOffset = vq.offset + alignUp(16 * queueSize + 2 * (3 + queueSize), ringAlign);
  const device = take(DEV_WORDS * 4);
  const reporting = take(REP_WORDS * 4);
  // Two bitmaps of one bit per page: resident (host RSS), then discarded
  // (a later guest touch of a discarded page is a refault).
  const hostWords = Math.ceil(pages / 32);
  // ... then one lock word per 2 MiB for the host's THP faults (--host-thp).
  const hostHugeWords = Math.ceil(pages / (1 << PAGEBLOCK_ORDER));
  const hostResident = take((2 * hostWords + hostHugeWords) * 4);
  const metrics = take(threads * METRIC_SLOT_BYTES);
  const violations = take(VIO_WORDS * 4);
  const sParts = schedParts(threads, params.schedLogSteps ?? 0);
  const sched = take(sParts.bytes);
  const trace = take(traceBytes(threads, params.traceEvents ?? 0));
  const hintTrack = take(params.hintTrack ? HINT_TRACK_MAPS * pages : 0);
  const cpuSlots = take(slotWords(cpus) * 4);
  const guest = take(memoryBytes, PAGE_SIZE);
  const layout: Layout = {
    params: { ...params },
    pages,
    threads,
    locks,
    header,
    locksRegion,
    lockstat,
    structPages,
    zone,
    pcpOffsetWords: ZONE_WORDS_FIXED,
    vq,
    vqDescOffset,
    vqAvailOffset,
    vqUsedOffset,
    device,
    reporting,
    hostResident,
    hostWords,
    hostHugeLockBase: 2 * hostWords,
    metrics,
    violations,
    sched,
    schedParts: sParts,
    trace,
    hintTrack,
    cpuSlots,
    guest,
    totalBytes: alignUp(off, PAGE_SIZE),
  };
  assertLayout(layout);
  return layout;
}

/** Start-up assertions (docs/DESIGN.md §3): alignment, no overlap, wait words aligned Int32. */
export function assertLayout(l: Layout): void {
  const regions: [string, Region, number][] = [
    ['header', l.header, 64],
    ['locks', l.locksRegion, 64],
    ['lockstat', l.lockstat, 64],
    ['pages', l.structPages, 4],
    ['zone', l.zone, 64],
    ['vq', l.vq, 16],
    ['device', l.device, 64],
    ['reporting', l.reporting, 64],
    ['host', l.hostResident, 4],
    ['metrics', l.metrics, 64],
    ['violations', l.violations, 4],
    ['sched', l.sched, 64],
    ['trace', l.trace, 64],
    ['hinttrack', l.hintTrack, 64],
    ['cpuslots', l.cpuSlots, 64],
    ['guest', l.guest, PAGE_SIZE],
  ];
  let prevEnd = 0;
  let prevName = '(start)';
  for (const [name, r, align] of regions) {
    if (r.offset % align !== 0) throw new Error(`layout: region ${name} at ${r.offset} is not ${align}-byte aligned`);
    if (r.offset < prevEnd) throw new Error(`layout: region ${name} overlaps ${prevName}`);
    prevEnd = r.offset + r.bytes;
    prevName = name;
  }
  if (prevEnd > l.totalBytes) throw new Error('layout: regions run past the end of the buffer');
  // vring part alignments from the spec: desc 16, avail 2, used 4.
  if (l.vqDescOffset % 16 !== 0 || l.vqAvailOffset % 2 !== 0 || l.vqUsedOffset % 4 !== 0) throw new Error('layout: vring parts misaligned');
  if (l.vqUsedOffset + 6 + 8 * l.params.queueSize > l.vq.offset + l.vq.bytes) throw new Error('layout: used ring overruns vq region');
  // Every wait word must be an Int32 at a 4-byte aligned offset: they all live
  // in Int32-word regions that are 64-byte aligned, so this holds by the
  // checks above; assert the concrete ones anyway.
  for (const abs of waitWordOffsets(l)) {
    if (abs % 4 !== 0) throw new Error(`layout: wait word at ${abs} not 4-byte aligned`);
  }
  if (l.metrics.offset % 8 !== 0 || l.lockstat.offset % 8 !== 0) throw new Error('layout: Float64 region misaligned');
  if (PAGE_WORDS * 4 > 32) throw new Error('layout: struct page exceeds 32 bytes');
  if ((LS_HOLD_HIST + HIST_BUCKETS) * 8 > LOCKSTAT_SLOT_BYTES || LS_CONTENDING_POINT + LOCKSTAT_SITES > LS_WAIT_HIST) throw new Error('layout: lockstat fields overrun their slot');
  if (LOCKSTAT_SLOT_BYTES % CACHE_LINE !== 0) throw new Error('layout: lockstat slot not cache-line padded');
  if (PCP_LISTS + 2 * NR_PCP_LISTS > PCP_LINE_WORDS) throw new Error('layout: pcp lists overrun their cache line');
  if (ZONE_AERATION_ACTIVE >= ZONE_WORDS_FIXED) throw new Error('layout: zone words overrun ZONE_WORDS_FIXED');
  if ((METRIC_INJECTED + INJECTED_SLOTS) * 8 > METRIC_SLOT_BYTES) throw new Error('layout: injection counters overrun the metric slot');
  if ((METRIC_FAULTS + FAULT_SLOTS) * 8 > METRIC_SLOT_BYTES) throw new Error('layout: wake checks and fault counters overrun the metric slot');
  // Each event wait word's wake mark lies in its own region and cache line,
  // on a word nothing else names (the header's HDR_WORDS, the device's and
  // the reporting region's 16-word lines).
  for (const [w, words] of [[HDR_STATE_GEN, HDR_WORDS], [DEV_KICK, DEV_WORDS], [DEV_INTERRUPT, DEV_WORDS], [DEV_CONFIG_GEN, DEV_WORDS], [DEV_RESET_ACK, DEV_WORDS], [REP_REQUEST_GEN, REP_WORDS], [REP_HINT_LIST_GEN, REP_WORDS]]) {
    if (w + WAKE_MARK >= words || ((w * 4) >> 6) !== (((w + WAKE_MARK) * 4) >> 6)) throw new Error(`layout: the wake mark of word ${w} leaves its region or cache line`);
  }
  if (LOCK_REL_WOKEN >= LOCK_LINE_WORDS) throw new Error('layout: lock wake counters overrun the lock line');
}

/** Absolute byte offsets of every word used with Atomics.wait. */
export function waitWordOffsets(l: Layout): number[] {
  const out = [l.header.offset + HDR_STATE_GEN * 4, l.device.offset + DEV_KICK * 4, l.device.offset + DEV_INTERRUPT * 4, l.device.offset + DEV_CONFIG_GEN * 4, l.reporting.offset + REP_REQUEST_GEN * 4, l.reporting.offset + REP_HINT_LIST_GEN * 4, l.device.offset + DEV_RESET_ACK * 4];
  for (let i = 0; i < l.locks; i++) out.push(l.locksRegion.offset + i * CACHE_LINE + LOCK_WORD * 4);
  // The host THP fault locks (one Int32 per 2 MiB): the first stands for all, they are contiguous.
  out.push(l.hostResident.offset + l.hostHugeLockBase * 4);
  // The CPUs' slot wake words (--cpu-slots): contiguous, the first stands for all.
  out.push(l.cpuSlots.offset + SLOT_WAKE_BASE * 4);
  return out;
}

/** What the wait word at absolute Int32 index `abs` is, for messages (a lock's name, an event word's name), or null. */
export function waitWordName(l: Layout, abs: number): string | null {
  const byte = abs * 4;
  if (byte >= l.locksRegion.offset && byte < l.locksRegion.offset + l.locksRegion.bytes && (byte - l.locksRegion.offset) % CACHE_LINE === LOCK_WORD * 4) return `lock ${lockName((byte - l.locksRegion.offset) / CACHE_LINE)}`;
  const named: [number, string][] = [
    [l.header.offset + HDR_STATE_GEN * 4, 'run-state generation (HDR_STATE_GEN)'],
    [l.device.offset + DEV_KICK * 4, 'kick (DEV_KICK)'],
    [l.device.offset + DEV_INTERRUPT * 4, 'device interrupt (DEV_INTERRUPT)'],
    [l.device.offset + DEV_CONFIG_GEN * 4, 'config interrupt (DEV_CONFIG_GEN)'],
    [l.device.offset + DEV_RESET_ACK * 4, 'device reset acknowledgement (DEV_RESET_ACK)'],
    [l.reporting.offset + REP_REQUEST_GEN * 4, 'report request (REP_REQUEST_GEN)'],
    [l.reporting.offset + REP_HINT_LIST_GEN * 4, 'balloon list generation (REP_HINT_LIST_GEN)'],
  ];
  for (const [b, name] of named) if (b === byte) return name;
  return null;
}

/** Typed views over the one shared buffer. All offsets come from the layout. */
export interface Views {
  sab: SharedArrayBuffer;
  layout: Layout;
  header: Int32Array;
  locks: Int32Array;
  lockstat: Float64Array;
  pages: Int32Array;
  zone: Int32Array;
  vqBytes: DataView; // little-endian accessors for the ring
  vqU16: Uint16Array; // fast paths (only valid on little-endian hosts; asserted)
  device: Int32Array;
  reporting: Int32Array;
  hostResident: Int32Array;
  metrics: Float64Array;
  violations: Int32Array;
  /** --trace: the per-thread event rings (Float64, after the control header); empty with --trace off. */
  trace: Float64Array;
  /** --trace: the control header's Int32 words (TRACE_PUBLISHED) and, over its second half, Float64 words (TRACE_ORIGIN_MS). */
  traceCtl: Int32Array;
  traceCtlF64: Float64Array;
  /** Guest memory as 64-bit lanes: fast fill (a Uint8Array fill on a SAB is ~8x slower). */
  guestF64: Float64Array;
  /** Guest memory as Int32 words: stamps and poison patterns. */
  guestI32: Int32Array;
  /** Free page hint's per-page maps (HTM_*), map m at [m * pages, (m + 1) * pages); empty unless the layout has the hinttrack region. */
  hintTrack: Uint8Array;
  /** --cpu-slots wake words and ticket map (SLOT_*). */
  cpuSlots: Int32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function buildViews(sab: SharedArrayBuffer, layout: Layout): Views {
  if (sab.byteLength < layout.totalBytes) throw new Error(`layout: buffer is ${sab.byteLength} bytes, layout needs ${layout.totalBytes}`);
  if (!LITTLE_ENDIAN) throw new Error('balloon-sim needs a little-endian host (virtio rings are little-endian)');
  const i32 = (r: Region) => new Int32Array(sab, r.offset, r.bytes / 4);
  const f64 = (r: Region) => new Float64Array(sab, r.offset, r.bytes / 8);
  return {
    sab,
    layout,
    header: i32(layout.header),
    locks: i32(layout.locksRegion),
    lockstat: f64(layout.lockstat),
    pages: i32(layout.structPages),
    zone: i32(layout.zone),
    vqBytes: new DataView(sab, layout.vq.offset, layout.vq.bytes),
    vqU16: new Uint16Array(sab, layout.vq.offset, layout.vq.bytes >> 1),
    device: i32(layout.device),
    reporting: i32(layout.reporting),
    hostResident: new Int32Array(sab, layout.hostResident.offset, layout.hostResident.bytes / 4),
    metrics: f64(layout.metrics),
    violations: i32(layout.violations),
    trace: layout.trace.bytes > 0 ? new Float64Array(sab, layout.trace.offset + TRACE_HDR_BYTES, (layout.trace.bytes - TRACE_HDR_BYTES) / 8) : new Float64Array(0),
    traceCtl: new Int32Array(sab, layout.trace.offset, layout.trace.bytes > 0 ? TRACE_HDR_BYTES / 4 : 0),
    traceCtlF64: new Float64Array(sab, layout.trace.offset, layout.trace.bytes > 0 ? TRACE_HDR_BYTES / 8 : 0),
    // Element counts stay below 2^32 for any guest up to 16 GiB (2^31 Int32 words).
    guestF64: new Float64Array(sab, layout.guest.offset, layout.guest.bytes / 8),
    guestI32: new Int32Array(sab, layout.guest.offset, layout.guest.bytes / 4),
    hintTrack: new Uint8Array(sab, layout.hintTrack.offset, layout.hintTrack.bytes),
    cpuSlots: i32(layout.cpuSlots),
  };
}

/**
 * Zero a whole buffer in pieces: one typed-array view holds at most 2^32
 * elements here (V8), so a Uint8Array over a buffer of 4 GiB or more (--memory
 * up to 16 GiB) cannot be made at all.
 */
export function zeroBuffer(sab: SharedArrayBuffer, chunkBytes = 2 ** 30): void {
  if (!(chunkBytes > 0 && chunkBytes <= 2 ** 32)) throw new Error(`zeroBuffer: chunk of ${chunkBytes} bytes`);
  for (let off = 0; off < sab.byteLength; off += chunkBytes) new Uint8Array(sab, off, Math.min(chunkBytes, sab.byteLength - off)).fill(0);
}

/** Main thread: allocate the buffer (or zero `reuse`) and stamp the header. */
export function createShared(params: LayoutParams, reuse?: SharedArrayBuffer): Views {
  const layout = computeLayout(params);
  let sab: SharedArrayBuffer;
  if (reuse !== undefined) {
    // A buffer from an earlier run of the same shape (benchmarks pair runs on
    // the same memory): zero it so it starts as a fresh one would.
    if (reuse.byteLength !== layout.totalBytes) throw new Error(`layout: reused buffer is ${reuse.byteLength} bytes, this configuration needs ${layout.totalBytes}`);
    zeroBuffer(reuse);
    sab = reuse;
  } else sab = new SharedArrayBuffer(layout.totalBytes);
  const v = buildViews(sab, layout);
  v.header[HDR_MAGIC] = LAYOUT_MAGIC;
  v.header[HDR_VERSION] = LAYOUT_VERSION;
  v.header[HDR_CPUS] = params.cpus;
  v.header[HDR_PAGES] = layout.pages;
  v.header[HDR_QUEUE_SIZE] = params.queueSize;
  for (let l = 0; l < layout.locks; l++) v.locks[l * LOCK_LINE_WORDS + LOCK_CLASS] = lockClassOf(l);
  return v;
}

/** Worker: rebuild the views and check the header echoes the same configuration. */
export function openShared(sab: SharedArrayBuffer, params: LayoutParams): Views {
  const layout = computeLayout(params);
  const v = buildViews(sab, layout);
  const h = v.header;
  if (h[HDR_MAGIC] !== LAYOUT_MAGIC || h[HDR_VERSION] !== LAYOUT_VERSION) throw new Error('layout: shared buffer header magic/version mismatch');
  if (h[HDR_CPUS] !== params.cpus || h[HDR_PAGES] !== layout.pages || h[HDR_QUEUE_SIZE] !== params.queueSize) {
    throw new Error('layout: shared buffer header does not echo this thread\'s configuration');
  }
  return v;
}

/** Int32 index of a lock instance's word within views.locks. */
export const lockWordIndex = (lock: number) => lock * LOCK_LINE_WORDS + LOCK_WORD;
/** Float64 index of the lockstat slot of (lock class, thread) within views.lockstat. */
export const lockstatBase = (lockClass: number, thread: number, threads: number) => (lockClass * threads + thread) * (LOCKSTAT_SLOT_BYTES / 8);
/** Float64 index of a thread's metric slot base within views.metrics. */
export const metricBase = (thread: number) => thread * (METRIC_SLOT_BYTES / 8);
/** Int32 index of cpu's pcp line within views.zone. */
export const pcpBase = (cpu: number) => ZONE_WORDS_FIXED + cpu * PCP_LINE_WORDS;
