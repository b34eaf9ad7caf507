// Log2 histograms with 4 linear sub-buckets per power of two (quarter-octave,
// at most ~19% relative error), kept as Float64 counters inside a shared slot.
// Bucket 4*e + s covers [2^e * (1 + s/4), 2^e * (1 + (s+1)/4)) for e >= 2;
// values below 4 land in buckets 0..3 exactly.

export const HIST_SUB = 4;
export const HIST_OCTAVES = 40; // up to 2^40 ns (about 18 minutes)
export const HIST_BUCKETS = HIST_SUB * HIST_OCTAVES;

export function bucketOf(v: number): number {
  if (!(v >= 0)) return 0;
  if (v < 4) return Math.floor(v);
  const e = Math.floor(Math.log2(v));
  if (e >= HIST_OCTAVES) return HIST_BUCKETS - 1;
  const sub = Math.floor((v / 2 ** e - 1) * HIST_SUB);
  return e * HIST_SUB + Math.min(HIST_SUB - 1, sub);
}

/** Lower bound of bucket b. */
export function bucketLow(b: number): number {
  if (b < 4) return b;
  const e = Math.floor(b / HIST_SUB);
  const s = b % HIST_SUB;
  return 2 ** e * (1 + s / HIST_SUB);
}

/** Upper bound (exclusive) of bucket b. */
export function bucketHigh(b: number): number {
  if (b < 4) return b + 1;
  const e = Math.floor(b / HIST_SUB);
  const s = b % HIST_SUB;
  return 2 ** e * (1 + (s + 1) / HIST_SUB);
}

export function record(arr: Float64Array, base: number, v: number): void {
  arr[base + bucketOf(v)]++;
}

/** Add the histogram at `src[srcBase..]` into `dst` (length HIST_BUCKETS). */
export function accumulate(dst: Float64Array, src: Float64Array, srcBase: number): void {
  for (let b = 0; b < HIST_BUCKETS; b++) dst[b] += src[srcBase + b];
}

/**
 * Percentile q (0..1) of a histogram: the upper bound of the bucket holding
 * the q-th sample, clamped to the observed max when one is known. 0 if empty.
 */
export function percentile(h: Float64Array, q: number, maxSeen = Infinity): number {
  let total = 0;
  for (let b = 0; b < HIST_BUCKETS; b++) total += h[b];
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let acc = 0;
  for (let b = 0; b < HIST_BUCKETS; b++) {
    acc += h[b];
    if (acc >= rank) return Math.min(bucketHigh(b), maxSeen);
  }
  return Math.min(bucketHigh(HIST_BUCKETS - 1), maxSeen);
}

/** p50/p99/max of the histogram stored at `src[base..]` (one thread's slot), clamped to the observed max. */
export function slotPercentiles(src: Float64Array, base: number, max: number): { p50: number; p99: number; max: number } {
  const h = new Float64Array(HIST_BUCKETS);
  accumulate(h, src, base);
  return { p50: percentile(h, 0.5, max), p99: percentile(h, 0.99, max), max };
}

/** One non-empty bucket of a histogram: [low, high) and its count (JSON: `...HistNs` fields). */
export interface HistBucket {
  lowNs: number;
  highNs: number;
  count: number;
}

/** The non-empty buckets of the histogram stored at `src[base..]`, lowest first. */
export function nonEmptyBuckets(src: Float64Array, base = 0): HistBucket[] {
  const out: HistBucket[] = [];
  for (let b = 0; b < HIST_BUCKETS; b++) if (src[base + b] > 0) out.push({ lowNs: bucketLow(b), highNs: bucketHigh(b), count: src[base + b] });
  return out;
}
