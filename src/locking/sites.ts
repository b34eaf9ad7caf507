// Call sites of lock acquisitions, one id per code path that takes a lock:
// lock statistics attribute waits and holds to them (lock_stat's contention
// and contending points, which the kernel records as instruction pointers).
// One table for every subsystem, so every id has a name: an id the table
// does not know would print as a bare number.

import { LOCKSTAT_SITES } from '../shm/layout.js';

export const SITE_NAMES = [
  '?',
  'alloc', // mm: rmqueue from a CPU
  'free', // mm: __free_one_page from a CPU
  'pcp_refill', // mm: rmqueue_bulk
  'pcp_drain', // mm: free_pcppages_bulk
  'oracle_check', // check: structural checks under the zone lock
  'report_isolate', // mm: page_reporting_cycle isolating blocks
  'report_drain', // mm: page_reporting_drain putting them back
  'hint_alloc', // guest: free page hint allocating balloon blocks
  'hint_free', // guest: free page hint returning them
  'balloon_react', // guest: aeration's balloon_lock around fill, kick and wait
  'uffd_fault', // host: a vCPU's userfaultfd write-protect fault (--hint-uffd-wp serialized)
  'uffd_discard', // host: the hint device's write-tracking check and discard (--hint-uffd-wp serialized)
  'uffd_arm', // host: write-protecting guest memory for a hint run
] as const;
export type SiteName = (typeof SITE_NAMES)[number];

const site = (name: SiteName): number => SITE_NAMES.indexOf(name);
export const SITE_ALLOC = site('alloc');
export const SITE_FREE = site('free');
export const SITE_PCP_REFILL = site('pcp_refill');
export const SITE_PCP_DRAIN = site('pcp_drain');
export const SITE_CHECK = site('oracle_check');
export const SITE_REPORT_ISOLATE = site('report_isolate');
export const SITE_REPORT_DRAIN = site('report_drain');
export const SITE_HINT_ALLOC = site('hint_alloc');
export const SITE_HINT_FREE = site('hint_free');
export const SITE_BALLOON_REACT = site('balloon_react');
export const SITE_UFFD_FAULT = site('uffd_fault');
export const SITE_UFFD_DISCARD = site('uffd_discard');
export const SITE_UFFD_ARM = site('uffd_arm');

if (SITE_NAMES.length > LOCKSTAT_SITES) throw new Error(`locking: ${SITE_NAMES.length} call sites do not fit the ${LOCKSTAT_SITES} lockstat slots`);

/** The name lock statistics print for a site id. */
export function siteName(id: number): string {
  return SITE_NAMES[id] ?? `site${id}`;
}
