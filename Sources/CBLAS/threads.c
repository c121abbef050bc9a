#include "CBLAS.h"
#if defined(__APPLE__)
void loupe_blas_set_threads(int n) { (void)n; }
#else
void openblas_set_num_threads(int n);
void loupe_blas_set_threads(int n) { openblas_set_num_threads(n); }
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

