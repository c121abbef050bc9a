// A neuron index is input: a database edited by hand or by another program must give a clear error when it is
// read or resumed, never a trap (row decoding once used GRDB's non-optional accessors: SIGSEGV, SIGILL).

import Foundation
import GRDB
import LoupeFormats
import LoupeModels
import LoupeStore
import Testing

@Suite struct TamperedIndexTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2-tiny")
    static let tokens = (0..<48).map { ($0 * 7919 + 3) % 50257 }
    static let corpus = CorpusIdentity(digest: "test", documents: 1)

    /// Each tampering, as SQL run on a finished index, with words its error must contain.
    static let tamperings: [(sql: String, says: String)] = [
        ("UPDATE examples SET focus = 999 WHERE rowid = 1", "focus 999"),
        ("UPDATE examples SET focus = -1 WHERE rowid = 1", "focus -1"),
        ("UPDATE examples SET neuron = -5 WHERE rowid = 1", "neuron -5"),
        ("UPDATE examples SET neuron = 100000 WHERE rowid = 1", "neuron 100000"),
        ("UPDATE examples SET position = -3 WHERE rowid = 1", "position -3"),
        ("UPDATE examples SET context = x'0102' WHERE rowid = 1", "not a blob of 32-bit token ids"),
        ("UPDATE examples SET context = 'text' WHERE rowid = 1", "token id 1954047348"),   // "text" read as bytes
        ("UPDATE examples SET context = x'FFFFFFFF' WHERE rowid = 1", "token id -1"),
        ("UPDATE examples SET activation = 'abc' WHERE rowid = 1", "activation"),
        ("UPDATE examples SET neuron = 'seven' WHERE rowid = 1", "neuron"),
        ("""
         CREATE TABLE loose AS SELECT * FROM examples; DROP TABLE examples;
         CREATE TABLE examples (neuron, activation, document, position, context, focus);
         INSERT INTO examples SELECT * FROM loose; UPDATE examples SET position = NULL WHERE rowid = 1
         """, "position NULL"),
        ("UPDATE examples SET document = 5 WHERE rowid = 1", "document 5, expected 0..<1"),
        ("UPDATE meta SET value = 'x' WHERE key = 'next_position'", "next_position is \"x\""),
        ("UPDATE meta SET value = '-4' WHERE key = 'next_position'", "next_position is \"-4\""),
        ("UPDATE meta SET value = '99' WHERE key = 'next_document'", "outside the shard's documents"),
        ("""
         UPDATE meta SET value = '0' WHERE key IN ('next_document', 'finished');
         UPDATE meta SET value = '999999' WHERE key = 'next_position'
         """, "corpus or tokenizer has changed"),
        ("""
         UPDATE meta SET value = '0' WHERE key IN ('next_document', 'finished');
         UPDATE meta SET value = '16' WHERE key = 'next_position'
         """, "beyond the place indexed (document 0 token 16)"),
        ("UPDATE meta SET value = 'maybe' WHERE key = 'finished'", "finished is \"maybe\""),
        ("UPDATE meta SET value = '2/1' WHERE key = 'shard'", "does not describe a shard"),
        ("UPDATE meta SET value = '1' WHERE key = 'format'", "index format 1"),
        ("DELETE FROM meta WHERE key = 'format'; INSERT INTO meta VALUES ('settings', 'layer 1')", "earlier Loupe"),
        ("INSERT INTO examples SELECT * FROM examples WHERE neuron = 0", "more than k = 3"),
        ("UPDATE meta SET value = 'zero' WHERE key = 'k'", "meta k is \"zero\""),
        ("DELETE FROM meta WHERE key = 'next_position'", "next_position is missing"),
        ("""
         CREATE TABLE m2 AS SELECT * FROM meta; DROP TABLE meta; CREATE TABLE meta (key, value);
         INSERT INTO meta SELECT * FROM m2; INSERT INTO meta VALUES ('model', 'again')
         """, "stored twice"),
        ("""
         CREATE TABLE m2 AS SELECT * FROM meta; DROP TABLE meta; CREATE TABLE meta (key, value);
         INSERT INTO meta SELECT * FROM m2; UPDATE meta SET value = NULL WHERE key = 'shard'
         """, "not text"),
    ]

    @Test(arguments: tamperings.indices)
    func tamperedIndexIsAnError(_ i: Int) throws {
        let (sql, says) = Self.tamperings[i]
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tamper-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let index = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: Self.corpus, k: 3, context: 2, window: 16)
        try model.buildNeuronIndex(index, tokens: Self.tokens)
        try DatabaseQueue(path: path).write { try $0.execute(sql: sql) }

        // Reading it (as `neurons --db` and the explorer do), then resuming it (as `neuron-index` does).
        var messages: [String] = []
        do {
            let reader = try NeuronExampleIndex(openExisting: path, model: model, layer: 1)
            _ = try reader.allExamples()
            _ = try reader.examples(neuron: 0)
            let writer = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: Self.corpus, k: 3, context: 2, window: 16)
            try model.buildNeuronIndex(writer, tokens: Self.tokens)
        } catch let error as IndexError {
            messages.append(error.description)
        }
        #expect(messages.count == 1, "no error for: \(sql)")
        #expect(messages.first?.contains(says) == true, "\(sql): \(messages.first ?? "none")")
    }
}
