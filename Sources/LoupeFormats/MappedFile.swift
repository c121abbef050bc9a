// A read-only memory map of a whole file.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong opening or mapping a file.
public enum FileError: Error, Equatable, CustomStringConvertible {
    case notFound(path: String)
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let p): return "no such file: \(p)"
        case .unreadable(let p, let r): return "cannot read \(p): \(r)"
        case .unwritable(let p, let r): return "cannot write \(p): \(r)"
        }
    }
}

/// A file mapped read-only into memory; unmapped when the last reference goes.
public final class MappedFile: @unchecked Sendable {
    /// The file's bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    public let path: String

    /// Maps `path` read-only. With `populate` (Linux) the whole file is read in at once, which is fastest
    /// when every byte is about to be copied; without it pages are read on first use.
    public init(path: String, populate: Bool = true) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
            throw FileError.notFound(path: path)
        }
        // A FIFO would block the open until some writer came, and a device has no size: regular files only.
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            throw FileError.unreadable(path: path, reason: "it is \(fileKind(info.st_mode)), not a regular file")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw FileError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw FileError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        #if os(Linux)
        let flags = populate ? MAP_PRIVATE | MAP_POPULATE : MAP_PRIVATE   // populate: one call, not a fault a page
        #else
        let flags = MAP_PRIVATE
        #endif
        guard let p = mmap(nil, size, PROT_READ, flags, fd, 0), p != MAP_FAILED else {
            throw FileError.unreadable(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Gives back the resident pages of the whole pages inside `range` (bytes no longer needed: a parsed
    /// header). Nothing changes for a reader: the mapping is read-only, and a page read again comes back
    /// from the file. Only resident memory drops.
    public func releasePages(_ range: Range<Int>) {
        guard let base = bytes.baseAddress else { return }
        let page = Int(getpagesize())
        let lower = (range.lowerBound + page - 1) / page * page
        let upper = min(range.upperBound, bytes.count) / page * page
        guard upper > lower else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lower), upper - lower, MADV_DONTNEED)
    }

    /// Reads a little-endian integer at `offset` (caller checks the range).
    @inlinable
    public func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Writes `data` to `url` through a temporary file and a rename, so a failed write leaves nothing half-written.
/// A symbolic link is written through (its target is replaced, not the link); an existing device, FIFO or
/// socket is written in place (never replaced by a file: `--save-logits /dev/full` reports the full device).
public func writeAtomically(_ data: Data, to url: URL) throws {
    let target = url.resolvingSymlinksInPath()
    var info = stat()
    if stat(target.path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
        guard info.st_mode & S_IFMT != S_IFDIR else { throw FileError.unwritable(path: url.path, reason: "it is a directory") }
        guard let handle = FileHandle(forWritingAtPath: target.path) else {
            throw FileError.unwritable(path: url.path, reason: String(cString: strerror(errno)))
        }
        do {
            try handle.write(contentsOf: data)
            try handle.close()
        } catch {
            try? handle.close()
            throw FileError.unwritable(path: url.path, reason: "\(fileKind(info.st_mode)): \(error.localizedDescription)")
        }
        return
    }
    do {
        try data.write(to: target, options: .atomic)
    } catch {
        throw FileError.unwritable(path: url.path, reason: error.localizedDescription)
    }
}

/// "a directory", "a FIFO", … for a `st_mode`.
func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    case S_IFREG: return "a regular file"
    default: return "a special file"
    }
}
