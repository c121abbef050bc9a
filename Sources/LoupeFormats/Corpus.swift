// A corpus for jobs that read a lot of text (neuron indexes, activation statistics): documents taken from
// plain text files, JSON Lines files and folders of them, named by a digest of their bytes, and split into
// shards by document so that N machines can share one job with no overlap and no coordination.
//
// Files are memory-mapped and documents are byte ranges into them: a shard decodes only its own documents,
// and a corpus larger than memory is paged in as it is read.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Problems with a corpus or a shard.
public enum CorpusError: Error, Equatable, CustomStringConvertible {
    case noDocuments(paths: [String])
    case badDocument(source: String, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .noDocuments(let p): return "no documents in \(p.joined(separator: ", ")) (empty files, or a folder without .txt/.jsonl files)"
        case .badDocument(let s, let r): return "\(s): \(r)"
        case .invalid(let s): return s
        }
    }
}

/// One part of a job split N ways: `index` of `count`, 1-based (`2/4`). Shard I of N takes documents
/// ⌊(I−1)·D/N⌋ ..< ⌊I·D/N⌋ of a D-document corpus: every document goes to exactly one shard, for any N.
public struct Shard: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The whole corpus as one shard.
    public static let whole = Shard(checked: 1, 1)

    private init(checked index: Int, _ count: Int) { (self.index, self.count) = (index, count) }

    public init(index: Int, count: Int) throws {
        guard count >= 1, (1...count).contains(index) else {
            throw CorpusError.invalid("a shard is I/N with 1 ≤ I ≤ N (1-based, e.g. 1/4 … 4/4), found \(index)/\(count)")
        }
        (self.index, self.count) = (index, count)
    }

    /// `I/N`, as `--shard` takes it.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw CorpusError.invalid("a shard is written I/N (1-based, e.g. 2/4), found \"\(text)\"")
        }
        try self.init(index: i, count: n)
    }

    /// The documents of a `total`-document corpus that this shard takes.
    public func documents(of total: Int) -> Range<Int> {
        // Products in 128 bits cannot overflow whatever the counts.
        func bound(_ i: Int) -> Int {
            let (hi, lo) = total.multipliedFullWidth(by: i)
            return count.dividingFullWidth((hi, lo)).quotient
        }
        return bound(index - 1)..<bound(index)
    }

    public var description: String { "\(index)/\(count)" }
}

/// A corpus's identity: what a shard result records, and what results are checked against before merging.
public struct CorpusIdentity: Equatable, Sendable {
    /// sha256 over every document's bytes, each preceded by its length.
    public let digest: String
    public let documents: Int

    public init(digest: String, documents: Int) {
        self.digest = digest
        self.documents = documents
    }
}

/// Documents read from files:
/// - a `.jsonl` file: one document per non-blank line, a JSON object with a `"text"` string (the layout of
///   most published corpora) or a bare JSON string;
/// - any other file: UTF-8 text, cut into documents at the first blank line after every `documentBytes`
///   bytes (at a line break when a long stretch has no blank line), so a novel becomes a few dozen documents;
/// - a folder: its `.txt` and `.jsonl` files, recursively, in the byte order of their relative paths.
public final class Corpus: @unchecked Sendable {
    private struct Document {
        let file: Int
        let range: Range<Int>
        /// For JSON Lines: the 1-based line number (0 for plain text).
        let line: Int
    }

    /// The files read, in order (folders expanded).
    public let files: [String]
    public let documentBytes: Int
    public let identity: CorpusIdentity
    private let mapped: [MappedFile]
    private let documents: [Document]

    public var count: Int { documents.count }

    /// The usual size of a plain-text document: 16 KiB, about 4,000 tokens of English.
    public static let defaultDocumentBytes = 16_384

    public init(paths: [String], documentBytes: Int = Corpus.defaultDocumentBytes) throws {
        guard documentBytes >= 1 else { throw CorpusError.invalid("documentBytes must be ≥ 1, found \(documentBytes)") }
        self.documentBytes = documentBytes
        var files: [String] = []
        for path in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw FileError.notFound(path: path) }
            if isDir.boolValue {
                files += try Self.filesInFolder(path)
            } else {
                files.append(path)
            }
        }
        self.files = files
        mapped = try files.map { try MappedFile(path: $0, populate: false) }
        var documents: [Document] = []
        var hasher = SHA256()
        for (f, file) in mapped.enumerated() {
            let bytes = file.bytes
            let ranges = files[f].hasSuffix(".jsonl") ? Self.lines(bytes) : Self.textDocuments(bytes, target: documentBytes).map { ($0, 0) }
            for (range, line) in ranges {
                if files[f].hasSuffix(".jsonl") {
                    let first = bytes[range.lowerBound]
                    guard first == UInt8(ascii: "{") || first == UInt8(ascii: "\"") else {
                        throw CorpusError.badDocument(source: "\(files[f]):\(line)",
                                                      reason: "expected a JSON object with a \"text\" string, or a JSON string; found a line starting \(Self.excerpt(bytes, range))")
                    }
                }
                documents.append(Document(file: f, range: range, line: line))
                withUnsafeBytes(of: UInt64(range.count).littleEndian) { hasher.update($0) }
                hasher.update(UnsafeRawBufferPointer(rebasing: bytes[range]))
            }
        }
        guard !documents.isEmpty else { throw CorpusError.noDocuments(paths: paths) }
        self.documents = documents
        identity = CorpusIdentity(digest: hasher.finalizeHex(), documents: documents.count)
    }

    /// Where document `i` comes from: `file` or `file:line`.
    public func source(of i: Int) -> String {
        let d = documents[i]
        return d.line > 0 ? "\(files[d.file]):\(d.line)" : "\(files[d.file]) (bytes \(d.range.lowerBound)..<\(d.range.upperBound))"
    }

    /// The size of document `i` in its file, in bytes.
    public func byteCount(of i: Int) -> Int { documents[i].range.count }

    /// Document `i`'s text.
    /// - Throws: `CorpusError.badDocument` for bytes that are not UTF-8 or a JSON line without its text.
    public func text(_ i: Int) throws -> String {
        precondition(documents.indices.contains(i), "document \(i) of \(documents.count)")
        let d = documents[i]
        let bytes = UnsafeRawBufferPointer(rebasing: mapped[d.file].bytes[d.range])
        if d.line == 0 {
            guard let text = String(data: Data(bytes), encoding: .utf8) else {
                throw CorpusError.badDocument(source: source(of: i), reason: "not UTF-8 text")
            }
            return text
        }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw CorpusError.badDocument(source: source(of: i), reason: "not JSON (\(error.localizedDescription))")
        }
        if let text = value as? String { return text }
        guard let object = value as? [String: Any] else {
            throw CorpusError.badDocument(source: source(of: i), reason: "expected a JSON object with a \"text\" string, or a JSON string")
        }
        guard let text = object["text"] as? String else {
            let found = object["text"].map(Self.jsonKind) ?? "no \"text\" key (keys: \(object.keys.sorted().prefix(8).joined(separator: ", ")))"
            throw CorpusError.badDocument(source: source(of: i), reason: "expected a \"text\" string, found \(found)")
        }
        return text
    }

    private static func jsonKind(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let n as NSNumber: return "the number \(n)"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }

    /// The `.txt` and `.jsonl` files under `folder`, by relative path (byte order, so every machine agrees).
    private static func filesInFolder(_ folder: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw FileError.unreadable(path: folder, reason: "cannot list the folder")
        }
        var found: [String] = []
        while let relative = walker.nextObject() as? String {
            // Hidden files and anything inside hidden folders (.git, .ipynb_checkpoints) are not corpus.
            if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            guard relative.hasSuffix(".txt") || relative.hasSuffix(".jsonl") else { continue }
            var isDir: ObjCBool = false
            let full = (folder as NSString).appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue { found.append(relative) }
        }
        return found.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .map { (folder as NSString).appendingPathComponent($0) }
    }

    /// Non-blank lines (without their line break or a trailing CR), with 1-based line numbers.
    private static func lines(_ bytes: UnsafeRawBufferPointer) -> [(Range<Int>, Int)] {
        var out: [(Range<Int>, Int)] = []
        var start = 0, line = 1
        while start < bytes.count {
            let end = nextNewline(bytes, from: start) ?? bytes.count
            var stop = end
            if stop > start, bytes[stop - 1] == 0x0D { stop -= 1 }
            var first = start
            while first < stop, bytes[first] == 0x20 || bytes[first] == 0x09 { first += 1 }
            if first < stop { out.append((first..<stop, line)) }
            start = end + 1
            line += 1
        }
        return out
    }

    /// Plain text cut after `target` bytes at the next blank line; where none comes within three more
    /// targets, at the next line break; where there is none, the rest is one document.
    private static func textDocuments(_ bytes: UnsafeRawBufferPointer, target: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        while start < bytes.count {
            var cut = bytes.count
            if bytes.count - start > target {
                let from = start + target
                let limit = min(bytes.count, from + 3 * target)   // target < bytes.count here: no overflow
                var p = from, found: Int?
                while p < limit, let nl = nextNewline(bytes, from: p), nl < limit {
                    // A blank line follows this break: "\n\n" or "\n\r\n".
                    if nl + 1 < bytes.count, bytes[nl + 1] == 0x0A { found = nl + 2; break }
                    if nl + 2 < bytes.count, bytes[nl + 1] == 0x0D, bytes[nl + 2] == 0x0A { found = nl + 3; break }
                    p = nl + 1
                }
                cut = found ?? nextNewline(bytes, from: from).map { $0 + 1 } ?? bytes.count
            }
            out.append(start..<cut)
            start = cut
        }
        return out
    }

    private static func nextNewline(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let hit = memchr(base + from, 0x0A, bytes.count - from) else { return nil }
        return UnsafeRawPointer(hit) - base
    }

    private static func excerpt(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        let head = UnsafeRawBufferPointer(rebasing: bytes[range.lowerBound..<min(range.upperBound, range.lowerBound + 24)])
        return "\"" + String(decoding: head, as: UTF8.self) + (range.count > 24 ? "…" : "") + "\""
    }
}
