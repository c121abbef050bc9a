// Tests of the byte-level BPE trainer: its merges against a plain Python trainer (scripts/bpe_reference.py,
// whose fixture is Tests/Fixtures/bpe-reference-merges.json) and a naive Swift trainer written here, the
// vocabulary layout against GPT-2's encoder.json, round trips through the written files, compression of
// held-out Austen text, and typed errors. The Austen texts and GPT-2 files are read from `../shared` beside
// the package root (or $LOUPE_SHARED); if missing, the tests that need them fail (they do not skip).

import Foundation
import Testing
@testable import LoupeFormats

/// Data and helpers for the trainer tests.
private enum TrainerTestData {
    struct FixtureError: Error, CustomStringConvertible {
        let description: String
    }

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // LoupeFormatsTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root

    static func sharedDirectory() throws -> URL {
        let url: URL
        if let override = ProcessInfo.processInfo.environment["LOUPE_SHARED"], !override.isEmpty {
            url = URL(fileURLWithPath: override, isDirectory: true)
        } else {
            url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
        }
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("data/corpora/austen").path) else {
            throw FixtureError(description: """
                shared test data not found at \(url.path): the trainer tests need the `shared` folder beside the \
                package root (with data/corpora/austen), or LOUPE_SHARED set to it
                """)
        }
        return url
    }

    /// The first `scalars` Unicode scalars of an Austen novel (scalars, as Python counts a string's length).
    static func austen(_ name: String, scalars: Int) throws -> String {
        let url = try sharedDirectory().appendingPathComponent("data/corpora/austen/\(name)")
        let text = try String(contentsOf: url, encoding: .utf8)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text.unicodeScalars.prefix(scalars))
        return String(view)
    }

    /// The fixture written by scripts/bpe_reference.py.
    struct ReferenceFixture: Decodable {
        let texts: [String]
        let scalars: Int
        let vocabSize: Int
        let minFrequency: Int
        let specialTokens: [String]
        let merges: [[String]]
    }

    static func referenceFixture() throws -> ReferenceFixture {
        let url = packageRoot.appendingPathComponent("Tests/Fixtures/bpe-reference-merges.json")
        return try JSONDecoder().decode(ReferenceFixture.self, from: Data(contentsOf: url))
    }

    /// A naive trainer, written from the rules in `BPETrainer`'s documentation: recount every pair before
    /// each merge, take the highest count and on a tie the smallest (left id, right id). Words are the
    /// GPT-2 pieces of each text (no special tokens).
    static func naiveMerges(texts: [String], vocabSize: Int, minFrequency: Int) -> [(String, String)] {
        // GPT-2's alphabet, transcribed from encoder.py; byte token ids are its characters in code-point order.
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var scalarOf = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if printable.contains(b) { scalarOf[b] = UInt32(b) } else { scalarOf[b] = 256 + n; n += 1 }
        }
        let order = (0..<256).sorted { scalarOf[$0] < scalarOf[$1] }
        var tokens: [[UInt8]] = order.map { [UInt8($0)] }
        var idOf: [[UInt8]: Int] = [:]
        for (id, t) in tokens.enumerated() { idOf[t] = id }

        var frequency: [[UInt8]: Int] = [:]
        for text in texts {
            for piece in PreTokenizer.gpt2.pieces(of: text) { frequency[Array(piece.utf8), default: 0] += 1 }
        }
        let keys = frequency.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var words = keys.map { $0.map { idOf[[$0]] ?? -1 } }
        let counts = keys.map { frequency[$0] ?? 0 }

        var merges: [(String, String)] = []
        while tokens.count < vocabSize {
            var pairs: [[Int]: Int] = [:]
            for (word, count) in zip(words, counts) where word.count > 1 {
                for i in 0..<(word.count - 1) { pairs[[word[i], word[i + 1]], default: 0] += count }
            }
            guard let best = pairs.min(by: { a, b in
                a.value != b.value ? a.value > b.value : a.key.lexicographicallyPrecedes(b.key)
            }), best.value >= minFrequency else { break }
            let (l, r) = (best.key[0], best.key[1])
            let bytes = tokens[l] + tokens[r]
            let merged: Int
            if let existing = idOf[bytes] { merged = existing } else {
                merged = tokens.count
                tokens.append(bytes)
                idOf[bytes] = merged
            }
            merges.append((spell(tokens[l], scalarOf), spell(tokens[r], scalarOf)))
            words = words.map { word in
                var out: [Int] = []
                var i = 0
                while i < word.count {
                    if i + 1 < word.count && word[i] == l && word[i + 1] == r { out.append(merged); i += 2 } else {
                        out.append(word[i]); i += 1
                    }
                }
                return out
            }
        }
        return merges
    }

    private static func spell(_ bytes: [UInt8], _ scalarOf: [UInt32]) -> String {
        String(String.UnicodeScalarView(bytes.compactMap { Unicode.Scalar(scalarOf[Int($0)]) }))
    }

    /// "first difference at merge i: expected …, found …", or nil when equal.
    static func firstDifference(_ expected: [(String, String)], _ found: [(left: String, right: String)]) -> String? {
        for i in 0..<max(expected.count, found.count) {
            let e = i < expected.count ? "\(expected[i])" : "nothing"
            let f = i < found.count ? "\((found[i].left, found[i].right))" : "nothing"
            if e != f { return "first difference at merge \(i) of \(expected.count) expected / \(found.count) found: expected \(e), found \(f)" }
        }
        return nil
    }

    /// A trained tokenizer shared by the round-trip tests: Emma's first 60k scalars, vocab 1024.
    static let small: Result<TrainedBPE, Error> = Result {
        try BPETrainer(vocabSize: 1024).train(texts: [try austen("emma.txt", scalars: 60_000)])
    }

    static func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("loupe-bpe-trainer-\(UUID().uuidString)", isDirectory: true)
    }
}

// MARK: - Merges

@Suite("BPETrainer: merges")
struct BPETrainerMergeTests {
    /// The merges equal those of scripts/bpe_reference.py (a naive Python trainer) on the first 20k scalars
    /// of Pride and Prejudice, vocab 256 + 300 + <|endoftext|>. (Hugging Face `tokenizers` makes the same 300
    /// merges, as the script reports with --compare-hf.)
    @Test func mergesEqualPythonReference() throws {
        let fixture = try TrainerTestData.referenceFixture()
        let texts = try fixture.texts.map { try TrainerTestData.austen($0, scalars: fixture.scalars) }
        let trained = try BPETrainer(vocabSize: fixture.vocabSize, specialTokens: fixture.specialTokens,
                                     minFrequency: fixture.minFrequency).train(texts: texts)
        let expected = fixture.merges.map { ($0[0], $0[1]) }
        #expect(expected.count == 300)
        let difference = TrainerTestData.firstDifference(expected, trained.merges)
        #expect(difference == nil, "\(difference ?? "")")
        #expect(trained.vocabSize == fixture.vocabSize)
    }

    /// Small corpora with many ties, overlapping runs (`aaaa`) and tokens reachable by two merges (`a bc`
    /// after `ab c`), trained until no pair is left: the incremental counts agree with a naive recount.
    @Test(arguments: [
        "aaaaaaa aaaa aaaaa aaa aa a",
        "abababab abab ba bab aba",
        "the cat sat on the mat; the hat, the bat. That's theirs, isn't it? They'll see 1984 and 2001.",
        "abc abc abcd bcd bcd ab ab c c abcabc cab bca",
    ])
    func mergesEqualNaiveTrainer(text: String) throws {
        let trained = try BPETrainer(vocabSize: 400, specialTokens: [], minFrequency: 1).train(texts: [text, text + " x"])
        let expected = TrainerTestData.naiveMerges(texts: [text, text + " x"], vocabSize: 400, minFrequency: 1)
        let difference = TrainerTestData.firstDifference(expected, trained.merges)
        #expect(difference == nil, "\(difference ?? "")")
        #expect(trained.merges.count > 0)
    }

    /// Random texts over a four-letter alphabet with spaces: long runs of equal counts and repeated strings.
    @Test(arguments: [1, 2, 3, 4, 5])
    func randomTextsEqualNaiveTrainer(seed: UInt64) throws {
        var rng = BPETestData.SplitMix64(state: seed)
        let letters = Array("abcd ")
        let texts = (0..<3).map { _ in String((0..<300).map { _ in letters[Int(rng.next() % 5)] }) }
        let minFrequency = Int(seed % 3) + 1
        let trained = try BPETrainer(vocabSize: 600, specialTokens: [], minFrequency: minFrequency).train(texts: texts)
        let expected = TrainerTestData.naiveMerges(texts: texts, vocabSize: 600, minFrequency: minFrequency)
        let difference = TrainerTestData.firstDifference(expected, trained.merges)
        #expect(difference == nil, "seed \(seed): \(difference ?? "")")
    }

    /// Ties go to the smallest (left id, right id): letters (ids 64…) before `Ġ` (id 220), `a b` before `c d`.
    @Test func tiesGoToTheSmallestPair() throws {
        let trained = try BPETrainer(vocabSize: 300, specialTokens: [], minFrequency: 1).train(texts: ["ab cd"])
        #expect(trained.merges.map { [$0.left, $0.right] } == [["a", "b"], ["c", "d"], ["Ġ", "cd"]])
        #expect(Array(trained.tokens[256...]) == ["ab", "cd", "Ġcd"])
    }

    /// Training stops at the first pair below `minFrequency`, leaving the vocabulary smaller than asked.
    @Test func stopsBelowMinimumFrequency() throws {
        // "ab" twice, then "Ġab" once: only a b reaches 2.
        let trained = try BPETrainer(vocabSize: 1000, minFrequency: 2).train(texts: ["ab ab"])
        #expect(trained.merges.map { [$0.left, $0.right] } == [["a", "b"]])
        #expect(trained.vocabSize == 258)
        #expect(trained.requestedVocabSize == 1000)
        #expect(trained.specialTokens == ["<|endoftext|>": 257])
    }

    /// Special tokens in the corpus are cut out: no merge crosses or spells them.
    @Test func specialTokensAreNotTrainedOn() throws {
        let text = String(repeating: "<|endoftext|>", count: 50) + "ab"
        let trained = try BPETrainer(vocabSize: 300, minFrequency: 1).train(texts: [text])
        #expect(trained.merges.map { [$0.left, $0.right] } == [["a", "b"]])
    }

    /// Progress reports each learned token, ending at the number wanted.
    @Test func progressCountsUp() throws {
        final class Log: @unchecked Sendable { var calls: [(Int, Int)] = [] }
        let log = Log()
        let trained = try BPETrainer(vocabSize: 300).train(texts: [try TrainerTestData.austen("emma.txt", scalars: 5_000)]) {
            log.calls.append(($0, $1))
        }
        #expect(log.calls.count == trained.merges.count)
        #expect(log.calls.map(\.0) == Array(1...43))
        #expect(log.calls.allSatisfy { $0.1 == 43 })
    }
}

// MARK: - Vocabulary and files

@Suite("BPETrainer: vocabulary and files")
struct BPETrainerVocabularyTests {
    /// Ids 0…255 are the byte tokens in GPT-2's encoder.json order; learned tokens follow; specials are last.
    @Test func byteTokensInGPT2Order() throws {
        let trained = try TrainerTestData.small.get()
        let url = try TrainerTestData.sharedDirectory().appendingPathComponent("data/tokenizers/gpt2/encoder.json")
        let gpt2 = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: url))
        let gpt2Bytes = gpt2.filter { $0.value < 256 }.sorted { $0.value < $1.value }.map(\.key)
        #expect(gpt2Bytes.count == 256)
        #expect(Array(trained.tokens[..<256]) == gpt2Bytes)
        #expect(trained.vocabSize == 1024)
        #expect(trained.tokens.last == "<|endoftext|>")
        #expect(trained.specialTokens == ["<|endoftext|>": 1023])
        #expect(Set(trained.tokens).count == trained.tokens.count, "a spelling is used twice")
        // Each learned token is the concatenation of a merge made before it appears.
        var known = Set(trained.tokens[..<256])
        for merge in trained.merges {
            #expect(known.contains(merge.left) && known.contains(merge.right), "merge \(merge) uses an unknown token")
            known.insert(merge.left + merge.right)
        }
        #expect(known == Set(trained.tokens.dropLast()))
    }

    /// Saved files load back (tokenizer.json; encoder.json + vocab.bpe) and encode held-out text as the
    /// trained tokenizer does.
    @Test func savedFilesLoadAndEncodeTheSame() throws {
        let trained = try TrainerTestData.small.get()
        let direct = try trained.tokenizer()
        let dir = TrainerTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try trained.write(to: dir)
        #expect(files.map(\.lastPathComponent) == ["tokenizer.json", "encoder.json", "vocab.bpe"])

        let fromJSON = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        let fromGPT2 = try BPETokenizer(encoderJSON: dir.appendingPathComponent("encoder.json"),
                                        vocabBPE: dir.appendingPathComponent("vocab.bpe"))
        let heldOut = try TrainerTestData.austen("northanger-abbey.txt", scalars: 20_000)
        let expected = direct.encode(heldOut)
        #expect(expected.count > 1000)
        #expect(fromJSON.encode(heldOut) == expected)
        #expect(fromGPT2.encode(heldOut) == expected)
        for tok in [direct, fromJSON, fromGPT2] {
            #expect(tok.vocabSize == 1024)
            #expect(tok.endOfText == 1023)
            #expect(tok.encode("a<|endoftext|>b") == [tok.encode("a")[0], 1023, tok.encode("b")[0]])
        }
        #expect(try fromJSON.decode(expected) == heldOut)
    }

    /// Special tokens with quotes, backslashes and control characters survive tokenizer.json.
    @Test func oddSpecialTokensSurviveTokenizerJSON() throws {
        let specials = ["<|endoftext|>", "<\"quote\">", "<back\\slash>", "<tab\there>", "<nul\u{0}>", "<é🙂>"]
        let trained = try BPETrainer(vocabSize: 300, specialTokens: specials).train(texts: ["the theme of the thesis"])
        let dir = TrainerTestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try trained.write(to: dir)
        let loaded = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        #expect(loaded.specialTokens == trained.specialTokens)
        let text = "the <tab\there> theme<nul\u{0}><é🙂>"
        #expect(loaded.encode(text) == (try trained.tokenizer()).encode(text))
        #expect(try loaded.decode(loaded.encode(text)) == text)
    }
}

// MARK: - Encoding

@Suite("BPETrainer: encoding")
struct BPETrainerEncodingTests {
    static let strings = [
        "", " ", "\n\n\n", "\t \r\n x", "\u{0}\u{1}\u{7F}", "Hello, world!",
        "emoji 🙂👍🏽👨‍👩‍👧‍👦 🇫🇷", "e\u{301} combining", "\u{FFFD}\u{FFFD} replacement", "\\xff\\xfe not bytes",
        "日本語のテキスト", "مرحبا بالعالم", "  leading and trailing  ", "can't won't they'll I'M",
        "<|endoftext|> inside <|endoftext|>", "<|endoftext", "\u{10FFFF}\u{E000}\u{FEFF}",
    ]

    /// decode(encode(s)) == s for text unlike the training corpus.
    @Test(arguments: strings)
    func encodeDecodeIsIdentity(text: String) throws {
        let tok = try TrainerTestData.small.get().tokenizer()
        #expect(try tok.decode(tok.encode(text)) == text)
    }

    /// The same for random scalars drawn from the whole Unicode range.
    @Test func randomScalarsRoundTrip() throws {
        let tok = try TrainerTestData.small.get().tokenizer()
        var rng = BPETestData.SplitMix64(state: 42)
        for trial in 0..<50 {
            var view = String.UnicodeScalarView()
            while view.count < 60 {
                let value: UInt32 = rng.next() % 3 == 0 ? UInt32(rng.next() % 0x11_0000) : UInt32(rng.next() % 0x80)
                if let scalar = Unicode.Scalar(value) { view.append(scalar) }
            }
            let text = String(view)
            #expect(try tok.decode(tok.encode(text)) == text, "trial \(trial): \(text.quotedForDisplay)")
        }
    }

    /// Trained on Sense and Sensibility, vocab 2048 compresses Northanger Abbey (its first 100k scalars) to
    /// more than 3 bytes per token (measured 3.13; bytes alone give 1).
    @Test func compressesHeldOutText() throws {
        let train = try TrainerTestData.austen("sense-and-sensibility.txt", scalars: 1_000_000)
        let heldOut = try TrainerTestData.austen("northanger-abbey.txt", scalars: 100_000)
        let tok = try BPETrainer(vocabSize: 2048).train(texts: [train]).tokenizer()
        let bytesPerToken = tok.bytesPerToken([heldOut])
        #expect(bytesPerToken > 3.0, "held-out bytes/token \(bytesPerToken)")
        #expect(bytesPerToken < tok.bytesPerToken([train]), "held-out text should compress less than the training text")
    }
}

// MARK: - Errors

@Suite("BPETrainer: errors")
struct BPETrainerErrorTests {
    struct Case: Sendable, CustomStringConvertible {
        let vocabSize: Int
        let specials: [String]
        let minFrequency: Int
        let texts: [String]
        let error: BPETrainerError
        let message: String
        var description: String { message }
    }

    static let cases: [Case] = [
        Case(vocabSize: 100, specials: [], minFrequency: 2, texts: ["abc"],
             error: .vocabSizeTooSmall(requested: 100, minimum: 256),
             message: "vocabulary size 100 is too small: expected at least 256 (256 byte tokens + 0 special tokens)"),
        Case(vocabSize: 256, specials: ["<|endoftext|>"], minFrequency: 2, texts: ["abc"],
             error: .vocabSizeTooSmall(requested: 256, minimum: 257),
             message: "vocabulary size 256 is too small: expected at least 257 (256 byte tokens + 1 special token)"),
        Case(vocabSize: 257, specials: ["<|a|>", "<|b|>"], minFrequency: 2, texts: ["abc"],
             error: .vocabSizeTooSmall(requested: 257, minimum: 258),
             message: "vocabulary size 257 is too small: expected at least 258 (256 byte tokens + 2 special tokens)"),
        Case(vocabSize: 300, specials: [], minFrequency: 2, texts: [],
             error: .emptyCorpus, message: "the corpus is empty: expected some text outside special tokens, found none"),
        Case(vocabSize: 300, specials: [], minFrequency: 2, texts: ["", ""],
             error: .emptyCorpus, message: "the corpus is empty: expected some text outside special tokens, found none"),
        Case(vocabSize: 300, specials: ["<|endoftext|>"], minFrequency: 2, texts: ["<|endoftext|><|endoftext|>"],
             error: .emptyCorpus, message: "the corpus is empty: expected some text outside special tokens, found none"),
        Case(vocabSize: 300, specials: [], minFrequency: 0, texts: ["abc"],
             error: .invalidMinFrequency(0), message: "minimum pair frequency must be at least 1, found 0"),
        Case(vocabSize: 300, specials: [""], minFrequency: 2, texts: ["abc"],
             error: .invalidSpecialToken("", reason: "it is empty"), message: "special token \"\": it is empty"),
        Case(vocabSize: 300, specials: ["<s>", "<s>"], minFrequency: 2, texts: ["abc"],
             error: .invalidSpecialToken("<s>", reason: "it is given twice"), message: "special token \"<s>\": it is given twice"),
        Case(vocabSize: 300, specials: ["a"], minFrequency: 2, texts: ["abc"],
             error: .invalidSpecialToken("a", reason: "it is spelled like the byte token 64; choose another"),
             message: "special token \"a\": it is spelled like the byte token 64; choose another"),
    ]

    @Test(arguments: cases)
    func typedErrors(c: Case) throws {
        let trainer = BPETrainer(vocabSize: c.vocabSize, specialTokens: c.specials, minFrequency: c.minFrequency)
        do {
            _ = try trainer.train(texts: c.texts)
            Issue.record("expected \(c.error), training succeeded")
        } catch let error as BPETrainerError {
            #expect(error == c.error)
            #expect(error.description == c.message)
        }
    }
}
