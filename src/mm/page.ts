// struct page flag bits (docs/DESIGN.md §3), with the kernel's names where they mirror one.
// Only the head page of a block carries state; its order sits in bits 24..27.

// page flags (kernel names where they mirror one)
export const PG_BUDDY = 1 << 0; // head of a free block on free_area[order]
export const PG_REPORTED_SHIFT = 1;
export const PG_REPORTED = 1 << PG_REPORTED_SHIFT; // PageReported: this free block was reported to the host
export const PG_ISOLATED = 1 << 2; // taken off the free list by the reporter (in flight)
export const PG_ALLOCATED = 1 << 3; // head of a block owned by a CPU (PG_OWNER)
export const PG_PCP = 1 << 5; // order-0 page on a CPU's pcp list
export const PG_BALLOON = 1 << 6; // held by the free-page-hint balloon
export const PG_STATE_MASK = PG_BUDDY | PG_ISOLATED | PG_ALLOCATED | PG_PCP | PG_BALLOON;
export const ORDER_SHIFT = 24;
export const FLAGS_MASK = (1 << ORDER_SHIFT) - 1;

export function describeFlags(f: number): string {
  const names: string[] = [];
  if (f & PG_BUDDY) names.push('buddy');
  if (f & PG_REPORTED) names.push('reported');
  if (f & PG_ISOLATED) names.push('isolated');
  if (f & PG_ALLOCATED) names.push('allocated');
  if (f & PG_PCP) names.push('pcp');
  if (f & PG_BALLOON) names.push('balloon');
  return names.length ? names.join('|') : 'no-state';
}
