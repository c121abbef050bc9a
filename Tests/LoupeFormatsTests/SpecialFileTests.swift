// Outputs are written through symbolic links and into devices, never by replacing them with a file; inputs
// that are not regular files (a FIFO would block the open forever) are refused with a message.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct SpecialFileTests {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-special-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func kind(_ path: String, followingLinks: Bool = false) -> mode_t {
        var info = stat()
        _ = followingLinks ? stat(path, &info) : lstat(path, &info)
        return info.st_mode & S_IFMT
    }

    @Test func writesThroughASymbolicLink() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("real.npy"), link = dir.appendingPathComponent("link.npy")
        try Data("old".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        try writeNPY(try Tensor(shape: [2], scalars: [1, 2]), to: link)
        #expect(kind(link.path) == S_IFLNK, "the link is still a link")
        let written = try Data(contentsOf: target)
        #expect(written.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) && written.count > 8 + 8, "the target holds the array")
    }

    @Test func devicesAreWrittenInPlace() throws {
        try writeAtomically(Data("x".utf8), to: URL(fileURLWithPath: "/dev/null"))
        #expect(kind("/dev/null") == S_IFCHR)
        #expect(throws: FileError.self) { try writeAtomically(Data(repeating: 1, count: 1 << 16), to: URL(fileURLWithPath: "/dev/full")) }
        #expect(kind("/dev/full") == S_IFCHR, "/dev/full is still the device")
        do {
            try writeAtomically(Data("x".utf8), to: URL(fileURLWithPath: "/dev/full"))
        } catch {
            #expect("\(error)".contains("/dev/full") && "\(error)".contains("character device"), "\(error)")
        }
    }

    @Test func aDirectoryIsNotReplaced() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: FileError.unwritable(path: dir.path, reason: "it is a directory")) {
            try writeAtomically(Data("x".utf8), to: dir)
        }
    }

    @Test func aFIFOIsRefusedAsInput() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("model.gguf").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FileError.unreadable(path: fifo, reason: "it is a FIFO, not a regular file")) { try MappedFile(path: fifo) }
        #expect(throws: FileError.unreadable(path: fifo, reason: "it is a FIFO, not a regular file")) { try readUTF8Text(path: fifo) }
        #expect(throws: FileError.unreadable(path: "/dev/zero", reason: "it is a character device, not a regular file")) {
            try MappedFile(path: "/dev/zero")
        }
    }
}
