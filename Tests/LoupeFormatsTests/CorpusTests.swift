import Foundation
import LoupeFormats
import Testing

@Suite struct CorpusTests {
    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-corpus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func write(_ text: String, _ url: URL) throws { try Data(text.utf8).write(to: url) }

    /// Shard I of N takes ⌊(I−1)D/N⌋..<⌊ID/N⌋: for every D and N the shards cover the documents once, in
    /// order, and differ in size by at most one.
    @Test func shardsPartitionTheDocuments() throws {
        for total in [0, 1, 2, 3, 7, 19, 100, 1001] {
            for n in 1...9 {
                let ranges = try (1...n).map { try Shard(index: $0, count: n).documents(of: total) }
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == total)
                for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
                let sizes = ranges.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1, "D \(total), N \(n): \(sizes)")
            }
        }
        // Counts near Int.max do not overflow.
        #expect(try Shard(index: 3, count: 3).documents(of: Int.max) == (Int.max / 3 * 2)..<Int.max)
    }

    @Test func shardsAreWrittenIOverN() throws {
        #expect(try Shard(parsing: "2/4") == Shard(index: 2, count: 4))
        #expect(try Shard(parsing: "1/1") == .whole)
        for bad in ["0/4", "5/4", "2", "2/", "/4", "a/b", "1/0", "-1/3", "2/4/8", ""] {
            #expect(throws: CorpusError.self, "\(bad)") { try Shard(parsing: bad) }
        }
        do {
            _ = try Shard(parsing: "5/4")
        } catch {
            #expect("\(error)".contains("1 ≤ I ≤ N") && "\(error)".contains("5/4"))
        }
    }

    /// Plain text is cut at the first blank line after the target size, CRLF blank lines included; a stretch
    /// without blank lines is cut at a line break; a text without line breaks stays whole; the documents
    /// together are the file.
    @Test func plainTextIsCutAtBlankLines() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = "aaaa bbbb\ncccc\n\ndddd eeee ffff\r\n\r\ngggg\nhhhh\niiii\njjjj\n"
        try write(text, dir.appendingPathComponent("a.txt"))
        let corpus = try Corpus(paths: [dir.appendingPathComponent("a.txt").path], documentBytes: 4)
        let docs = try (0..<corpus.count).map(corpus.text)
        #expect(docs == ["aaaa bbbb\ncccc\n\n", "dddd eeee ffff\r\n\r\n", "gggg\n", "hhhh\n", "iiii\n", "jjjj\n"])
        #expect(docs.joined() == text)

        try write(String(repeating: "x", count: 100), dir.appendingPathComponent("b.txt"))
        let whole = try Corpus(paths: [dir.appendingPathComponent("b.txt").path], documentBytes: 10)
        #expect(try whole.count == 1 && whole.text(0).count == 100)
    }

    /// JSON Lines: one document a non-blank line, an object's "text" or a bare string; a line that is
    /// neither is an error naming the file and line.
    @Test func jsonLinesAreDocuments() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.jsonl")
        try write("{\"text\": \"first \\u00e9\", \"id\": 1}\r\n\n   \n\"second\"\n{\"text\": \"third\"}", path)
        let corpus = try Corpus(paths: [path.path])
        #expect(try (0..<corpus.count).map(corpus.text) == ["first é", "second", "third"])
        #expect(corpus.source(of: 1) == path.path + ":4")

        try write("{\"text\": \"ok\"}\n[1, 2]\n", path)
        #expect(throws: CorpusError.self) { try Corpus(paths: [path.path]) }
        try write("{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n{\"text\": 7}\n{\"text\": \"unfinished\n", path)
        let lax = try Corpus(paths: [path.path])
        #expect(try lax.text(0) == "ok")
        for (i, says) in [(1, ":2: expected a \"text\" string, found no \"text\" key (keys: body)"), (2, ":3: expected a \"text\" string, found the number 7"), (3, ":4: not JSON")] {
            do {
                _ = try lax.text(i)
                Issue.record("document \(i) read")
            } catch {
                #expect("\(error)".contains(says), "\(error)")
            }
        }
    }

    /// A folder is its .txt and .jsonl files, recursively, in the byte order of their paths; hidden files
    /// and other files are left out. The digest follows the documents' bytes and their boundaries.
    @Test func foldersAndDigests() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("b"), withIntermediateDirectories: true)
        try write("two", dir.appendingPathComponent("b/2.txt"))
        try write("one", dir.appendingPathComponent("a.txt"))
        try write("\"three\"", dir.appendingPathComponent("b/3.jsonl"))
        try write("hidden", dir.appendingPathComponent(".x.txt"))
        try write("not text", dir.appendingPathComponent("notes.md"))
        let corpus = try Corpus(paths: [dir.path])
        #expect(try (0..<corpus.count).map(corpus.text) == ["one", "two", "three"])
        #expect(corpus.identity.documents == 3)

        let again = try Corpus(paths: [dir.path])
        #expect(again.identity == corpus.identity)
        try write("twO", dir.appendingPathComponent("b/2.txt"))
        #expect(try Corpus(paths: [dir.path]).identity.digest != corpus.identity.digest)
        // The same bytes cut differently are another corpus.
        try write("onetwo", dir.appendingPathComponent("joined.txt"))
        try write("one", dir.appendingPathComponent("p1.txt"))
        try write("two", dir.appendingPathComponent("p2.txt"))
        let split = try Corpus(paths: [dir.appendingPathComponent("p1.txt").path, dir.appendingPathComponent("p2.txt").path])
        let joined = try Corpus(paths: [dir.appendingPathComponent("joined.txt").path])
        #expect(split.identity.digest != joined.identity.digest)

        #expect(throws: FileError.self) { try Corpus(paths: [dir.appendingPathComponent("missing.txt").path]) }
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(throws: CorpusError.noDocuments(paths: [empty.path])) { try Corpus(paths: [empty.path]) }
    }

    @Test func bytesThatAreNotUTF8AreNamed() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bad.txt")
        try Data([0x61, 0xFF, 0x62]).write(to: path)
        let corpus = try Corpus(paths: [path.path])
        #expect(throws: CorpusError.badDocument(source: "\(path.path) (bytes 0..<3)", reason: "not UTF-8 text")) { try corpus.text(0) }
    }
}
