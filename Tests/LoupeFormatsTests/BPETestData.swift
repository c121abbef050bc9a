// Tests of the GPT-2 byte-level BPE tokenizer against llama.cpp's GPT-2 test vectors, hand-derived
// expectations, and round trips. Shared data is found at `../shared` beside the package root, or at
// $LOUPE_SHARED; if it is missing the tests that need it fail (they do not skip).

import Foundation
import Testing
@testable import LoupeFormats

// MARK: - Fixtures

/// Fixtures and helpers, kept in one namespace so that nothing here collides with other test files.
enum BPETestData {
    /// A fixture problem, reported as the test's failure message.
    struct FixtureError: Error, CustomStringConvertible {
        let description: String
    }

    /// `$LOUPE_SHARED`, else the package root's sibling `shared` (this file is
    /// `<root>/Tests/LoupeFormatsTests/BPETokenizerTests.swift`).
    static func sharedDirectory() throws -> URL {
        let url: URL
        if let override = ProcessInfo.processInfo.environment["LOUPE_SHARED"], !override.isEmpty {
            url = URL(fileURLWithPath: override, isDirectory: true)
        } else {
            let root = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent()  // LoupeFormatsTests
                .deletingLastPathComponent()  // Tests
                .deletingLastPathComponent()  // package root
            url = root.deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FixtureError(description: """
                shared test data not found at \(url.path): the tokenizer tests need the `shared` folder beside \
                the package root (with data/tokenizers/gpt2 and data/tokenizer-tests), or LOUPE_SHARED set to it
                """)
        }
        return url
    }

    static func gpt2Directory() throws -> URL {
        try sharedDirectory().appendingPathComponent("data/tokenizers/gpt2", isDirectory: true)
    }

    /// The GPT-2 tokenizer, loaded once and shared by all tests (loading takes a while in a debug build).
    static let gpt2: Result<BPETokenizer, Error> = Result {
        let dir = try gpt2Directory()
        return try BPETokenizer(encoderJSON: dir.appendingPathComponent("encoder.json"),
                                vocabBPE: dir.appendingPathComponent("vocab.bpe"))
    }

    /// The canonical `encoder.json`, read independently of the tokenizer.
    static func encoderJSON() throws -> [String: Int] {
        let data = try Data(contentsOf: try gpt2Directory().appendingPathComponent("encoder.json"))
        return try JSONDecoder().decode([String: Int].self, from: data)
    }

    /// GPT-2's `bytes_to_unicode`, transcribed from `encoder.py` independently of `ByteLevelAlphabet`.
    static let byteToScalar: [UInt8: Unicode.Scalar] = {
        var bs = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var map: [UInt8: Unicode.Scalar] = [:]
        for (b, c) in zip(bs, cs) { map[UInt8(b)] = Unicode.Scalar(UInt32(c)) }
        return map
    }()

    /// Splits `bytes` at every occurrence of `separator`.
    static func split(_ bytes: [UInt8], on separator: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var start = 0
        var i = 0
        while i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                parts.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(Array(bytes[start...]))
        return parts
    }

    /// A deterministic generator (SplitMix64), so random cases are the same on every run.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Writes `files` (name → contents) into a fresh temporary directory.
    static func temporaryDirectory(with files: [String: String]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("loupe-bpe-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, contents) in files {
            try Data(contents.utf8).write(to: dir.appendingPathComponent(name))
        }
        return dir
    }
}
