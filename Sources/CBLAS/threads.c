#include "CBLAS.h"
#if defined(__APPLE__)
void loupe_blas_set_threads(int n) { (void)n; }
#else
void openblas_set_num_threads(int n);
void loupe_blas_set_threads(int n) { openblas_set_num_threads(n); }
#endif
