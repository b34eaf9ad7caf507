// The shipped default host cost profile (--cost-profile default), written by
// `sim calibrate --out src/mm/host-costs-default.ts` on 2026-12-01T23:49:13.739Z.
// Machine, per-field sources and the raw measurements are in the data below.
// Regenerate it on the machine the defaults should describe with:
//   npx tsc -p . && node dist/src/cli/main.js calibrate --out src/mm/host-costs-default.ts
// (src/mm/host-costs.ts validates it when it is loaded.)

export const DEFAULT_PROFILE_JSON: unknown = {
  "format": "balloon-sim-host-costs/1",
  "provenance": {
    "machine": "AMD EPYC, 2 CPUs, 24 GiB, Linux 6.18.44-fc-v1045, a virtual machine (CPUID hypervisor flag), THP madvise",
    "date": "2026-12-01T23:49:13.739Z",
    "command": "sim calibrate --out src/mm/host-costs-default.ts",
    "node": "v20.20.2",
    "cc": "cc (Debian 12.2.0-14+deb12u1) 12.2.0"
  },
  "costs": {
    "vmExitNs": 7455,
    "hostFault4kNs": 15526,
    "hostFault2mNs": 42681,
    "madviseEmptyNs": 1392,
    "madvise4kNs": 7965,
    "madvise64kNs": 85914,
    "madvise2mNs": 189842,
    "madvise4mNs": 398806,
    "madvise2mThpNs": 14909,
    "tlbFlushNs": 7455,
    "kickNs": 7455,
    "interruptNs": 7455
  },
  "sources": {
    "vmExitNs": "measured: CPUID round trip (C probe); this machine is a guest, so CPUID is a VM exit and entry",
    "hostFault4kNs": "measured: first touch of fresh anonymous memory per 4 KiB (MADV_NOHUGEPAGE) minus a memset of 4 KiB (C probe)",
    "hostFault2mNs": "measured: first touch per 2 MiB with MADV_HUGEPAGE (131072 KiB of huge pages) minus a memset of 2 MiB (C probe)",
    "madviseEmptyNs": "measured: MADV_DONTNEED of an unpopulated 2 MiB (C probe)",
    "madvise4kNs": "measured: MADV_DONTNEED of a populated 4 KiB of 4 KiB pages (C probe)",
    "madvise64kNs": "measured: MADV_DONTNEED of a populated 64 KiB of 4 KiB pages (C probe)",
    "madvise2mNs": "measured: MADV_DONTNEED of a populated 2048 KiB of 4 KiB pages (C probe)",
    "madvise4mNs": "measured: MADV_DONTNEED of a populated 4096 KiB of 4 KiB pages (C probe)",
    "madvise2mThpNs": "measured: MADV_DONTNEED of one populated 2 MiB huge page (C probe)",
    "tlbFlushNs": "derived: one VM exit and entry per vCPU (the VM exit measured here): kvm_flush_remote_tlbs' IPI; the flush and the TLB refills after it are not counted",
    "kickNs": "derived: one VM exit and entry (the VM exit measured here): the notify write, handled in KVM by ioeventfd",
    "interruptNs": "derived: one VM exit and entry (the VM exit measured here): the interrupt's injection on the vCPU that takes it"
  },
  "measured": {
    "node": {
      "firstTouch4kNs": 16176.612884521477,
      "zero4kNs": 369.98495483397954,
      "zero2mNs": 112197.46874999715,
      "futexRoundTripNs": 29295.999999931155
    },
    "probe": {
      "cpuidNs": 7454.8,
      "firstTouch4kNs": 15709,
      "zero4kNs": 183.4,
      "madviseNs": {
        "4096": 7964.5,
        "65536": 85914,
        "2097152": 189841.5,
        "4194304": 398805.5
      },
      "madviseEmptyNs": 1392,
      "firstTouch2mNs": 130702.3,
      "thpHugeKb": 131072,
      "zero2mNs": 88020.9,
      "madvise2mThpNs": 14908.5
    }
  }
};
