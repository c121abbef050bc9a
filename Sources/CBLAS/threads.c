#include "CBLAS.h"
#if defined(__APPLE__)
void loupe_blas_set_threads(int n) { (void)n; }
int loupe_blas_get_threads(void) { return 1; }
#else
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
void loupe_blas_set_threads(int n) { openblas_set_num_threads(n); }
int loupe_blas_get_threads(void) { return openblas_get_num_threads(); }
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

