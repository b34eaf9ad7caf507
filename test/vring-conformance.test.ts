// Conformance of our split ring with the kernel's own definitions: the
// TypeScript driver and device write a ring with known chains; a C program
// (test/c/vring_check.c), compiled here against /usr/include/linux/
// virtio_ring.h and virtio_balloon.h, reads it back through struct vring,
// vring_init() and vring_size() and checks every field against what the test
// intended. Skipped, with a visible message, only when there is no C compiler.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dev from '../src/virtio/balloon-abi.js';
import { PAGE_SIZE, vringSize } from '../src/shm/layout.js';
import * as ring from '../src/virtio/ring.js';
import { ringFixture } from './ring-fixture.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Under vitest this file runs from test/; compiled, from dist/test/.
const cSource = [path.resolve(here, 'c/vring_check.c'), path.resolve(here, '../../test/c/vring_check.c')].find((p) => existsSync(p));

function haveCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const hasCC = haveCompiler();
if (!hasCC) console.warn('SKIPPED vring conformance: no C compiler (`cc`) on this machine; the ring layout was NOT checked against linux/virtio_ring.h');

interface Written {
  ringBytes: Uint8Array;
  expect: string[];
}

/** Drive a ring of (num, align) with known chains and say what each field must hold. */
function writeKnownRing(num: number, align: number, eventIdx: boolean): Written {
  const memoryBytes = 16 * 2 ** 20;
  const f = ringFixture({ queueSize: num, ringAlign: align, eventIdx, memoryBytes });
  const exp: string[] = [`num ${num}`, `align ${align}`];
  // What TypeScript believes about the layout.
  exp.push(`size ${vringSize(num, align)}`, `avail_off ${f.views.layout.vqAvailOffset - f.views.layout.vq.offset}`, `used_off ${f.views.layout.vqUsedOffset - f.views.layout.vq.offset}`);
  // Chains of 1..3 buffers, alternating device-writable (in) and device-readable (out).
  // A fresh driver hands out descriptors 0, 1, 2, ... in order, so chain k's
  // descriptors follow on from chain k-1's.
  let nextDesc = 0;
  const heads: number[] = [];
  for (let k = 0; k < 40; k++) {
    const count = 1 + (k % 3);
    if (nextDesc + count > num) break;
    const addrs = Array.from({ length: count }, (_, j) => (k * 7 + j) * PAGE_SIZE);
    const lens = Array.from({ length: count }, (_, j) => (1 + ((k + j) % 4)) * PAGE_SIZE);
    const writable = k % 2 === 0;
    const head = writable ? f.driver.addInbuf(addrs, lens, count, k) : f.driver.addOutbuf(addrs, lens, count, k);
    expect(head).toBe(nextDesc);
    for (let j = 0; j < count; j++) {
      const i = nextDesc + j;
      const more = j + 1 < count;
      const flags = (writable ? ring.VRING_DESC_F_WRITE : 0) | (more ? ring.VRING_DESC_F_NEXT : 0);
      exp.push(`desc ${i} ${addrs[j]} ${lens[j]} ${flags} ${more ? i + 1 : 0}`);
    }
    exp.push(`avail ${k} ${nextDesc}`);
    heads.push(nextDesc);
    nextDesc += count;
  }
  f.driver.kick();
  expect(f.device.serve()).toBeNull();
  const collected = Math.floor(heads.length / 2);
  for (let k = 0; k < collected; k++) expect(f.driver.getBuf()).toBe(k);
  heads.forEach((h, k) => exp.push(`used ${k} ${h} 0`));
  exp.push(`avail_idx ${heads.length}`, `used_idx ${heads.length}`, 'avail_flags 0', 'used_flags 0');
  // EVENT_IDX: the device re-armed avail_event at its last_avail_idx; the
  // driver asked for an interrupt after the entries it collected.
  exp.push(`used_event ${eventIdx ? collected : 0}`, `avail_event ${eventIdx ? heads.length : 0}`);
  exp.push(`guest_bytes ${memoryBytes}`);
  const consts: [string, number][] = [
    ['VRING_DESC_F_NEXT', ring.VRING_DESC_F_NEXT],
    ['VRING_DESC_F_WRITE', ring.VRING_DESC_F_WRITE],
    ['VRING_DESC_F_INDIRECT', ring.VRING_DESC_F_INDIRECT],
    ['VRING_USED_F_NO_NOTIFY', ring.VRING_USED_F_NO_NOTIFY],
    ['VRING_AVAIL_F_NO_INTERRUPT', ring.VRING_AVAIL_F_NO_INTERRUPT],
    ['VIRTIO_RING_F_INDIRECT_DESC', ring.VIRTIO_RING_F_INDIRECT_DESC],
    ['VIRTIO_RING_F_EVENT_IDX', ring.VIRTIO_RING_F_EVENT_IDX],
    ['VIRTIO_BALLOON_F_MUST_TELL_HOST', dev.VIRTIO_BALLOON_F_MUST_TELL_HOST],
    ['VIRTIO_BALLOON_F_STATS_VQ', dev.VIRTIO_BALLOON_F_STATS_VQ],
    ['VIRTIO_BALLOON_F_DEFLATE_ON_OOM', dev.VIRTIO_BALLOON_F_DEFLATE_ON_OOM],
    ['VIRTIO_BALLOON_F_FREE_PAGE_HINT', dev.VIRTIO_BALLOON_F_FREE_PAGE_HINT],
    ['VIRTIO_BALLOON_F_PAGE_POISON', dev.VIRTIO_BALLOON_F_PAGE_POISON],
    ['VIRTIO_BALLOON_F_REPORTING', dev.VIRTIO_BALLOON_F_REPORTING],
    ['VIRTIO_BALLOON_PFN_SHIFT', dev.VIRTIO_BALLOON_PFN_SHIFT],
    ['sizeof(vring_desc)', ring.VRING_DESC_BYTES],
    ['sizeof(vring_used_elem)', ring.VRING_USED_ELEM_BYTES],
    ['sizeof(virtio_balloon_config)', dev.VIRTIO_BALLOON_CONFIG_OFFSETS.poison_val + 4],
    ...Object.entries(dev.VIRTIO_BALLOON_CONFIG_OFFSETS).map(([k, v]) => [`offsetof(virtio_balloon_config,${k})`, v] as [string, number]),
  ];
  for (const [n, v] of consts) exp.push(`const ${n} ${v}`);
  const l = f.views.layout;
  const ringBytes = new Uint8Array(f.views.sab, l.vq.offset, vringSize(num, align)).slice();
  return { ringBytes, expect: exp };
}

describe.skipIf(!hasCC)('split ring conformance with linux/virtio_ring.h (C, vring_init/vring_size)', () => {
  let dir = '';
  let bin = '';
  beforeAll(() => {
    expect(cSource, 'test/c/vring_check.c not found').toBeDefined();
    dir = mkdtempSync(path.join(tmpdir(), 'vring-conf-'));
    bin = path.join(dir, 'vring_check');
    execFileSync('cc', ['-std=c11', '-Wall', '-Wextra', '-Werror', '-O1', cSource!, '-o', bin], { stdio: 'pipe' });
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = (w: Written, tag: string) => {
    const rf = path.join(dir, `${tag}.ring`);
    const ef = path.join(dir, `${tag}.expect`);
    writeFileSync(rf, w.ringBytes);
    writeFileSync(ef, w.expect.join('\n') + '\n');
    const r = spawnSync(bin, [rf, ef], { encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  };

  const shapes: [number, number, boolean][] = [
    [2, 4, false],
    [8, 4096, true],
    [256, 4, true],
    [256, 4096, false],
    [1024, 4, false],
    [32768, 4096, true],
  ];
  for (const [num, align, eventIdx] of shapes) {
    it(`agrees with the kernel's struct vring for queue size ${num}, align ${align}, event-idx ${eventIdx ? 'on' : 'off'}`, () => {
      const w = writeKnownRing(num, align, eventIdx);
      const r = check(w, `q${num}a${align}`);
      expect(r.out).toMatch(/^ok \d+ checks/);
      expect(r.status).toBe(0);
    });
  }

  it('fails when one descriptor field disagrees (the checker can fail)', () => {
    const w = writeKnownRing(8, 4, false);
    const i = w.expect.findIndex((l) => l.startsWith('desc 1 '));
    const parts = w.expect[i].split(' ');
    parts[4] = String(Number(parts[4]) ^ ring.VRING_DESC_F_WRITE); // flip WRITE in the expectation
    w.expect[i] = parts.join(' ');
    const r = check(w, 'mutated');
    expect(r.status).toBe(1);
    expect(r.out).toContain('MISMATCH desc[1].flags');
  });
});
