// The virtio_balloon ABI both sides follow (include/uapi/linux/virtio_balloon.h,
// virtio 1.2 §5.5): feature bits, config-space offsets, free page hint
// command ids, the aeration hint format, queue numbering and the feature
// handshake. The guest's driver and the host's device both import this; the
// guest never imports the host.
//
// Queue numbering (--vq-numbering): the virtio spec (1.2 §5.5.2) numbers the
// balloon queues by role: inflateq 0, deflateq 1, statsq 2, free_page_vq 3,
// reporting_vq 4. Linux, QEMU and Firecracker number only the queues that
// exist: inflate 0, deflate 1, then stats, free page and reporting in that
// order, each only if its feature was negotiated. The default is 'linux'
// (what every implementation the simulator models does). It changes only the
// queue index the device exposes (DEV_VQ_INDEX) and expects with each
// notification (DEV_NOTIFY_QUEUE).

import { DEV_ACTUAL, DEV_FEATURES_NEGOTIATED, DEV_FEATURES_OFFERED, DEV_FREE_PAGE_HINT_CMD_ID, DEV_NUM_PAGES, DEV_POISON_VAL, DEV_VQ_INDEX, type Views } from '../shm/layout.js';

// ---- include/uapi/linux/virtio_balloon.h feature bits ----
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
export const VIRTIO_BALLOON_F_PAGE_POISON = 4;
export const VIRTIO_BALLOON_F_REPORTING = 5;
/** Aeration v1's name for bit 5 (Duyck, 2019). */
export const VIRTIO_BALLOON_F_HINTING = 5;
export const VIRTIO_BALLOON_PFN_SHIFT = 12;
/** struct virtio_balloon_config: le32 num_pages, actual, free_page_hint_cmd_id, poison_val (byte offsets). */
export const VIRTIO_BALLOON_CONFIG_OFFSETS = { num_pages: DEV_NUM_PAGES * 4, actual: DEV_ACTUAL * 4, free_page_hint_cmd_id: DEV_FREE_PAGE_HINT_CMD_ID * 4, poison_val: DEV_POISON_VAL * 4 } as const;

export const bit = (b: number): number => (1 << b) >>> 0;
export const hasFeature = (features: number, b: number): boolean => ((features >>> b) & 1) === 1;

/** Aeration: at most this many u64 hints in one buffer (aeration v1's batch of 32). */
export const HINTS_MAX = 32;
/** Aeration hint: guest_phys_addr | order; the order sits in the low 12 bits. */
export const HINT_ORDER_MASK = 0xfff;

/** include/uapi/linux/virtio_balloon.h */
export const VIRTIO_BALLOON_CMD_ID_STOP = 0;
export const VIRTIO_BALLOON_CMD_ID_DONE = 1;
/** QEMU: VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN; ids wrap back to it. */
export const VIRTIO_BALLOON_FREE_PAGE_HINT_CMD_ID_MIN = 2;
export const VQ_NUMBERINGS = ['spec', 'linux'] as const;
export type VqNumbering = (typeof VQ_NUMBERINGS)[number];
/** Queue index of the reporting (aeration: hinting, same feature bit) queue. */
export function reportingQueueIndex(numbering: VqNumbering, features: number): number {
  if (numbering === 'spec') return 4;
  let i = 2; // inflateq 0, deflateq 1
  if (hasFeature(features, VIRTIO_BALLOON_F_STATS_VQ)) i++;
  if (hasFeature(features, VIRTIO_BALLOON_F_FREE_PAGE_HINT)) i++;
  return i;
}

/** Queue index of the free_page_vq. */
export function freePageQueueIndex(numbering: VqNumbering, features: number): number {
  if (numbering === 'spec') return 3;
  return 2 + (hasFeature(features, VIRTIO_BALLOON_F_STATS_VQ) ? 1 : 0);
}

/**
 * Feature negotiation (FEATURES_OK): the driver accepts a subset of what is
 * offered. Sets the queue index for that feature set. Returns the negotiated bits.
 */
export function negotiateFeatures(views: Views, driverFeatures: number, numbering: VqNumbering, poisonVal = 0): number {
  const d = views.device;
  const negotiated = (d[DEV_FEATURES_OFFERED] & driverFeatures) >>> 0;
  d[DEV_FEATURES_NEGOTIATED] = negotiated | 0;
  // poison_val is written by the driver before DRIVER_OK (virtballoon_probe).
  d[DEV_POISON_VAL] = hasFeature(negotiated, VIRTIO_BALLOON_F_PAGE_POISON) ? poisonVal | 0 : 0;
  d[DEV_VQ_INDEX] = reportingQueueIndex(numbering, negotiated);
  return negotiated;
}

