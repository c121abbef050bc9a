#include "CBLAS.h"
#if defined(__APPLE__)
void loupe_blas_set_threads(int n) { (void)n; }
int loupe_blas_get_threads(void) { return 1; }
const char *loupe_blas_core(void) { return "Accelerate"; }
int loupe_cpu_has_avx2_fma(void) { return 0; }
#else
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
extern char **environ;
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
void loupe_blas_set_threads(int n) { openblas_set_num_threads(n); }
int loupe_blas_get_threads(void) { return openblas_get_num_threads(); }

/* OpenBLAS built for every x86 core (DYNAMIC_ARCH, as Debian ships it) picks its kernels from the CPU's family
   and model at load. A model it does not know (a newer Xeon, or a virtual machine that reports a generic
   "Intel Xeon Processor") falls back to the Prescott kernels: SSE3, about a quarter of the speed of the AVX-512
   ones on the same core (29 against ~100 GFLOPS for one thread's sgemm here). When that happened on a CPU with
   AVX2 and FMA (which no real Prescott has), choose again by instruction set: SkylakeX's kernels with AVX-512
   (F, BW, DQ, VL), else Haswell's. OPENBLAS_CORETYPE, when set, is the user's choice and is left alone. The
   symbols are weak: another BLAS, or an OpenBLAS built for one core, leaves this a no-op. */
char *openblas_get_corename(void);
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);
#pragma weak openblas_get_corename
#pragma weak gotoblas_dynamic_init
#pragma weak gotoblas_dynamic_quit

const char *loupe_blas_core(void) { return &openblas_get_corename != NULL ? openblas_get_corename() : "unknown"; }

int loupe_cpu_has_avx2_fma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if defined(__x86_64__)
__attribute__((constructor)) static void loupe_blas_choose_core(void) {
    if (&openblas_get_corename == NULL || &gotoblas_dynamic_init == NULL || &gotoblas_dynamic_quit == NULL) return;
    if (getenv("OPENBLAS_CORETYPE") != NULL) return;
    const char *core = openblas_get_corename();
    if (core == NULL || strcasecmp(core, "prescott") != 0) return;
    if (!loupe_cpu_has_avx2_fma()) return;
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
              && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    /* OpenBLAS reads its choice from the environment only. Adding a variable moves `environ` to a new array,
       and a statically linked Swift runtime finds the program's arguments just before the original one: put
       the original back afterwards (setenv copies, so it is unchanged; the copy is a few pointers). */
    char **original = environ;
    setenv("OPENBLAS_CORETYPE", avx512 ? "SkylakeX" : "Haswell", 0);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    environ = original;
}
#endif
#endif

#if defined(__linux__)
#include <malloc.h>
void loupe_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  /* glibc's largest allowed value */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
void loupe_keep_freed_memory(void) {}
#endif

