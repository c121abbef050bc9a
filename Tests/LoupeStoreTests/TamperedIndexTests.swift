// A neuron index is input: a database edited by hand or by another program must give a clear error when it is
// read or resumed, never a trap (row decoding once used GRDB's non-optional accessors: SIGSEGV, SIGILL).

import Foundation
import GRDB
import LoupeModels
import LoupeStore
import Testing

@Suite struct TamperedIndexTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2-tiny")
    static let tokens = (0..<48).map { ($0 * 7919 + 3) % 50257 }

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
         CREATE TABLE examples (neuron, activation, position, context, focus);
         INSERT INTO examples SELECT * FROM loose; UPDATE examples SET position = NULL WHERE rowid = 1
         """, "position NULL"),
        ("UPDATE meta SET value = 'x' WHERE key = 'next_token'", "next_token x"),
        ("UPDATE meta SET value = '-4' WHERE key = 'next_token'", "next_token"),
        ("UPDATE meta SET value = '999999' WHERE key = 'next_token'", "past the corpus"),
        ("UPDATE meta SET value = '16' WHERE key = 'next_token'", "beyond the 16 tokens indexed"),
        ("INSERT INTO examples SELECT * FROM examples WHERE neuron = 0", "more than k = 3"),
        ("UPDATE meta SET value = 'zero' WHERE key = 'k'", "k"),
        ("DELETE FROM meta WHERE key = 'next_token'", "next_token"),
        ("""
         CREATE TABLE m2 AS SELECT * FROM meta; DROP TABLE meta; CREATE TABLE meta (key, value);
         INSERT INTO meta SELECT * FROM m2; INSERT INTO meta VALUES ('model', 'again')
         """, "stored twice"),
        ("""
         CREATE TABLE m2 AS SELECT * FROM meta; DROP TABLE meta; CREATE TABLE meta (key, value);
         INSERT INTO meta SELECT * FROM m2; UPDATE meta SET value = NULL WHERE key = 'settings'
         """, "not text"),
    ]

    @Test(arguments: tamperings.indices)
    func tamperedIndexIsAnError(_ i: Int) throws {
        let (sql, says) = Self.tamperings[i]
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tamper-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let index = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: "test", k: 3, context: 2, window: 16)
        try model.buildNeuronIndex(index, tokens: Self.tokens, window: 16, context: 2)
        try DatabaseQueue(path: path).write { try $0.execute(sql: sql) }

        // Reading it (as `neurons --db` and the explorer do), then resuming it (as `neuron-index` does).
        var messages: [String] = []
        do {
            let reader = try NeuronExampleIndex(openExisting: path, model: model, layer: 1)
            _ = try reader.allExamples()
            _ = try reader.examples(neuron: 0)
            let writer = try NeuronExampleIndex(path: path, model: model, layer: 1, corpus: "test", k: 3, context: 2, window: 16)
            try model.buildNeuronIndex(writer, tokens: Self.tokens, window: 16, context: 2)
        } catch let error as IndexError {
            messages.append(error.description)
        }
        #expect(messages.count == 1, "no error for: \(sql)")
        #expect(messages.first?.contains(says) == true, "\(sql): \(messages.first ?? "none")")
    }
}
