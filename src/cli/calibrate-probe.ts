// The C probe of `sim calibrate` (src/cli/calibrate.ts): what Node cannot
// measure, compiled with the system C compiler at run time when there is one.
// It prints one JSON object; every figure is the median of several
// repetitions, in nanoseconds per operation.
//
//  cpuidNs          CPUID in a loop (x86 only). In a virtual machine CPUID
//                   always traps to the hypervisor: one VM exit and entry.
//                   On bare metal it does not (then it is not an exit cost).
//  firstTouch4kNs   a write to each 4 KiB page of a fresh anonymous mapping
//                   with MADV_NOHUGEPAGE: the kernel's do_anonymous_page
//                   (allocate, clear_page, map)
//  zero4kNs         memset of a resident 4 KiB page (the clear alone)
//  firstTouch2mNs   one write per 2 MiB of a fresh 2 MiB-aligned mapping with
//                   MADV_HUGEPAGE (do_huge_pmd_anonymous_page, clear_huge_page)
//  thpHugeKb        AnonHugePages the 2 MiB faults really got (0: THP unavailable)
//  zero2mNs         memset of a resident 2 MiB
//  madviseNs        MADV_DONTNEED of a populated range of 4 KiB pages, by size
//  madvise2mThpNs   MADV_DONTNEED of one populated 2 MiB huge page
//  madviseEmptyNs   MADV_DONTNEED of an unpopulated 2 MiB range (the call alone)

export const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MIB (1024UL * 1024UL)
#define PG 4096UL
#define HUGE (2UL * MIB)
#define REPS 5

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, n, sizeof(double), cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
static long anon_huge_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}
static char *map(size_t bytes, int advice) {
  char *p = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { fprintf(stderr, "mmap failed\n"); exit(1); }
  p = (char *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  madvise(p, bytes, advice);
  return p;
}
static volatile char sinkc;
static void touch(char *p, size_t bytes, size_t step) {
  for (size_t o = 0; o < bytes; o += step) p[o] = 1;
}

/* The median time of MADV_DONTNEED on each n-byte chunk of [p, p + bytes). */
static double madvise_each_median(char *p, size_t bytes, size_t n) {
  int calls = (int)(bytes / n);
  double *w = malloc(sizeof(double) * calls);
  for (int i = 0; i < calls; i++) {
    double t0 = now_ns();
    madvise(p + (size_t)i * n, n, MADV_DONTNEED);
    w[i] = now_ns() - t0;
  }
  double m = median(w, calls);
  free(w);
  return m;
}

int main(int argc, char **argv) {
  size_t region = (argc > 1 && strcmp(argv[1], "--quick") == 0) ? 32 * MIB : 128 * MIB;
  double v[REPS];
  printf("{");
#if defined(__x86_64__) || defined(__i386__)
  for (int r = 0; r < REPS; r++) {
    double t0 = now_ns();
    for (int i = 0; i < 2000; i++) {
      unsigned a = 0, b, c = 0, d;
      __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    }
    v[r] = (now_ns() - t0) / 2000;
  }
  printf("\"cpuidNs\":%.1f,", median(v, REPS));
#endif
  /* first touch, 4 KiB pages */
  for (int r = 0; r < REPS; r++) {
    char *p = map(region, MADV_NOHUGEPAGE);
    double t0 = now_ns();
    touch(p, region, PG);
    v[r] = (now_ns() - t0) / (region / PG);
    munmap(p, region);
  }
  printf("\"firstTouch4kNs\":%.1f,", median(v, REPS));
  {
    char *p = map(region, MADV_NOHUGEPAGE);
    touch(p, region, PG);
    for (int r = 0; r < REPS; r++) {
      double t0 = now_ns();
      for (size_t o = 0; o < region; o += PG) memset(p + o, 0, PG);
      v[r] = (now_ns() - t0) / (region / PG);
      sinkc = p[r];
    }
    printf("\"zero4kNs\":%.1f,", median(v, REPS));
    /* MADV_DONTNEED of populated ranges of 4 KiB pages, by size */
    size_t sizes[] = {PG, 16 * PG, HUGE, 2 * HUGE};
    printf("\"madviseNs\":{");
    for (int s = 0; s < 4; s++) {
      size_t n = sizes[s];
      size_t bytes = region / n > 4096 ? 4096 * n : region;
      touch(p, region, PG);
      printf("%s\"%zu\":%.1f", s ? "," : "", n, madvise_each_median(p, bytes, n));
    }
    printf("},");
    /* the call alone: an unpopulated range */
    touch(p, region, PG);
    madvise(p, region, MADV_DONTNEED);
    printf("\"madviseEmptyNs\":%.1f,", madvise_each_median(p, region, HUGE));
    munmap(p, region);
  }
  /* 2 MiB: transparent huge pages where the kernel gives them */
  {
    long got = -1;
    for (int r = 0; r < REPS; r++) {
      char *p = map(region, MADV_HUGEPAGE);
      long before = anon_huge_kb();
      double t0 = now_ns();
      touch(p, region, HUGE);
      v[r] = (now_ns() - t0) / (region / HUGE);
      long after = anon_huge_kb();
      if (before >= 0 && after >= 0) got = after - before;
      munmap(p, region);
    }
    printf("\"firstTouch2mNs\":%.1f,\"thpHugeKb\":%ld,", median(v, REPS), got);
    char *p = map(region, MADV_HUGEPAGE);
    touch(p, region, HUGE);
    for (int r = 0; r < REPS; r++) {
      double t0 = now_ns();
      for (size_t o = 0; o < region; o += HUGE) memset(p + o, 0, HUGE);
      v[r] = (now_ns() - t0) / (region / HUGE);
    }
    printf("\"zero2mNs\":%.1f,", median(v, REPS));
    printf("\"madvise2mThpNs\":%.1f", madvise_each_median(p, region, HUGE));
    munmap(p, region);
  }
  printf("}\n");
  return 0;
}
`;
