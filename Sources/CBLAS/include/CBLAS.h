// One header for BLAS and LAPACK on every platform Loupe builds on.
#ifndef LOUPE_CBLAS_H
#define LOUPE_CBLAS_H
#if defined(__APPLE__)
#define ACCELERATE_NEW_LAPACK
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
// Debian's OpenBLAS exports LAPACK's Fortran symbols but ships no LAPACKE header.
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info);
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s,
             float *u, const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork,
             int *iwork, int *info);
void sgeev_(const char *jobvl, const char *jobvr, const int *n, float *a, const int *lda, float *wr,
            float *wi, float *vl, const int *ldvl, float *vr, const int *ldvr, float *work,
            const int *lwork, int *info);
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
            const int *ldb, int *info);
#endif
/// Keeps freed large buffers in the process instead of returning them to the kernel (glibc; no-op elsewhere).
void loupe_keep_freed_memory(void);
/// Sets the number of BLAS threads (no-op where the library has no such control).
void loupe_blas_set_threads(int n);
/// The number of BLAS threads (1 where the library has no such control).
int loupe_blas_get_threads(void);
/// The kernels BLAS runs (OpenBLAS's core name, e.g. "SkylakeX"; "Accelerate" on Apple; "unknown" otherwise).
const char *loupe_blas_core(void);
/// Whether the CPU has AVX2 and FMA (x86-64; 0 elsewhere).
int loupe_cpu_has_avx2_fma(void);
#endif
