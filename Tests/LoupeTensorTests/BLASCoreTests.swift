import LoupeTensor
import Testing

@Suite struct BLASCoreTests {
    /// OpenBLAS (DYNAMIC_ARCH) falls back to its SSE3 "Prescott" kernels on a CPU model it does not know; Loupe
    /// chooses by instruction set instead (Sources/CBLAS/threads.c), so a CPU with AVX2 never runs them.
    @Test func blasRunsKernelsForThisCPU() {
        #if os(Linux) && arch(x86_64)
        let core = BLAS.core
        if BLAS.cpuHasAVX2 && core != "unknown" {
            #expect(core.lowercased() != "prescott", "OpenBLAS runs its SSE3 kernels on a CPU with AVX2 and FMA")
        }
        #endif
        #expect(!BLAS.core.isEmpty)
    }
}
