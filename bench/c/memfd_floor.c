// The host's floor for handing 256 MiB from one process to another through
// a memfd: each phase of spindle_mut's path timed alone, several variants.
// Build: gcc -O2 -o memfd_floor memfd_floor.c; run: ./memfd_floor [reps]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define N (256UL << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double t0;
static void mark(const char *what, double *acc) { double t = now(); *acc += t - t0; (void)what; t0 = t; }

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    double anon = 0, falloc = 0, mapw = 0, fill = 0, unmapw = 0, seal = 0, mapr = 0, unmapr = 0;
    double nofall_map = 0, nofall_fill = 0, nofall_free = 0, total = 0, total2 = 0, reuse = 0, hp = 0;
    for (int r = 0; r < reps; r++) {
        // Reference: fresh anonymous memory, filled and freed.
        t0 = now();
        char *a = mmap(0, N, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memset(a, 7, N);
        munmap(a, N);
        mark("anon", &anon);
        // Anonymous with MADV_HUGEPAGE (THP madvise mode).
        a = mmap(0, N, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise(a, N, MADV_HUGEPAGE);
        memset(a, 7, N);
        munmap(a, N);
        mark("hp", &hp);
        // spindle_mut's path, phase by phase.
        double start = now();
        int fd = memfd_create("floor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fallocate(fd, 0, 0, N)) { perror("fallocate"); return 1; }
        mark("falloc", &falloc);
        char *w = mmap(0, N, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        mark("mapw", &mapw);
        memset(w, 7, N);
        mark("fill", &fill);
        munmap(w, N);
        mark("unmapw", &unmapw);
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) { perror("seal"); return 1; }
        mark("seal", &seal);
        char *ro = mmap(0, N, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
        mark("mapr", &mapr);
        volatile char c = ro[N / 2]; (void)c;
        munmap(ro, N);
        close(fd);
        mark("unmapr", &unmapr);
        total += now() - start;
        // Without fallocate: MAP_POPULATE allocates by faults.
        start = now();
        t0 = start;
        fd = memfd_create("floor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ftruncate(fd, N);
        w = mmap(0, N, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        mark("nofall_map", &nofall_map);
        memset(w, 7, N);
        mark("nofall_fill", &nofall_fill);
        munmap(w, N);
        close(fd);
        mark("nofall_free", &nofall_free);
        total2 += now() - start;
        // A memfd whose pages are already there (reused): fill only.
        fd = memfd_create("floor", MFD_CLOEXEC);
        fallocate(fd, 0, 0, N);
        w = mmap(0, N, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        t0 = now();
        memset(w, 7, N);
        mark("reuse", &reuse);
        munmap(w, N);
        close(fd);
    }
    double k = reps;
    printf("per 256 MiB, mean of %d:\n", reps);
    printf("  anon mmap+memset+munmap      %.3f s (%.0f MB/s)\n", anon / k, N / (anon / k) / 1e6);
    printf("  anon + MADV_HUGEPAGE         %.3f s\n", hp / k);
    printf("  memfd fallocate              %.3f s\n", falloc / k);
    printf("  mmap rw populate             %.3f s\n", mapw / k);
    printf("  memset                       %.3f s\n", fill / k);
    printf("  munmap rw                    %.3f s\n", unmapw / k);
    printf("  seal                         %.3f s\n", seal / k);
    printf("  mmap ro populate (parent)    %.3f s\n", mapr / k);
    printf("  munmap ro + close (free)     %.3f s\n", unmapr / k);
    printf("  total (fallocate path)       %.3f s (%.0f MB/s)\n", total / k, N / (total / k) / 1e6);
    printf("  no fallocate: map populate   %.3f s, memset %.3f s, free %.3f s, total %.3f s\n",
           nofall_map / k, nofall_fill / k, nofall_free / k, total2 / k);
    printf("  memset into pages already there %.3f s (%.0f MB/s)\n", reuse / k, N / (reuse / k) / 1e6);
    return 0;
}
