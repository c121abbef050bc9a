import CBLAS

/// Keeps freed activation buffers in the process. glibc returns every allocation above its mmap
/// threshold to the kernel on free, so each forward pass would fault in (and the kernel zero) its
/// buffers again; a high threshold and trim limit keep them for the next pass.
enum MemoryTuning {
    static let configured: Bool = {
        loupe_keep_freed_memory()
        return true
    }()

    static func configure() { _ = configured }
}
