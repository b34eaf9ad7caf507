// The shipped default host cost profile (--cost-profile default), written by
// `sim calibrate --out src/mm/host-costs-default.ts` on 2026-12-01T22:25:42.199Z.
// Machine, per-field sources and the raw measurements are in the data below.
// Regenerate it on the machine the defaults should describe with:
//   npx tsc -p . && node dist/src/cli/main.js calibrate --out src/mm/host-costs-default.ts
// (src/mm/host-costs.ts validates it when it is loaded.)

export const DEFAULT_PROFILE_JSON: unknown = {
  "format": "balloon-sim-host-costs/1",
  "provenance": {
    "machine": "AMD EPYC, 2 CPUs, 24 GiB, Linux 6.18.44-fc-v1045, a virtual machine (CPUID hypervisor flag), THP madvise",
    "date": "2026-12-01T22:25:42.199Z",
    "command": "sim calibrate --out src/mm/host-costs-default.ts",
    "node": "v20.20.2",
    "cc": "cc (Debian 12.2.0-14+deb12u1) 12.2.0"
  },
  "costs": {
    "vmExitNs": 7758,
    "hostFault4kNs": 21213,
    "hostFault2mNs": 133547,
    "madviseEmptyNs": 1102,
    "madvise4kNs": 40127,
    "madvise64kNs": 378733,
    "madvise2mNs": 179813,
    "madvise4mNs": 247267,
    "madvise2mThpNs": 11933,
    "tlbFlushNs": 7758,
    "kickNs": 7758,
    "interruptNs": 7758
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
      "firstTouch4kNs": 25548.356872558597,
      "zero4kNs": 728.9601745605335,
      "zero2mNs": 169351.64062500975,
      "futexRoundTripNs": 13269.999999920401
    },
    "probe": {
      "cpuidNs": 7757.9,
      "firstTouch4kNs": 21499.4,
      "zero4kNs": 286.2,
      "madviseNs": {
        "4096": 40127,
        "65536": 378732.5,
        "2097152": 179813,
        "4194304": 247267
      },
      "madviseEmptyNs": 1102,
      "firstTouch2mNs": 184082.9,
      "thpHugeKb": 131072,
      "zero2mNs": 50536.1,
      "madvise2mThpNs": 11933
    }
  }
};
