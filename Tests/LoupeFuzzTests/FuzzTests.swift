// Fuzzing every input Loupe reads: for each family a seeded mutator turns valid inputs into
// `LOUPE_FUZZ_CASES` broken ones (200 in `swift test`; docs/reliability.md gives the long runs). A case passes
// when Loupe returns a value or throws: a trap (crash, overflow, out-of-bounds, allocation failure) ends the
// test process, and so fails the run.

import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeStore
import LoupeTensor
import LoupeTestSupport
import LoupeTraining
import Testing
import LoupeServer

enum Fuzz {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// A scratch folder for one family's cases.
    static func scratch(_ family: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-fuzz-\(family)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    static func write(_ bytes: [UInt8], _ url: URL) throws { try Data(bytes).write(to: url) }

    /// A safetensors file mutated: its header is JSON, so half the cases edit it structurally; the rest
    /// mutate bytes anywhere.
    static func mutate(safetensors seed: [UInt8], _ m: inout Mutator) -> [UInt8] {
        if m.below(2) == 0, seed.count >= 8 {
            let n = Int(seed[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            let header = m.mutate(json: Array(seed[8..<(8 + n)]))
            return Array(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init)) + header + Array(seed[(8 + n)...])
        }
        return m.mutate(bytes: seed)
    }

    /// Runs `cases` mutations: `body(i, &mutator)` makes and feeds case i. Counts outcomes for the record.
    static func run(_ family: String, _ body: (Int, inout Mutator) throws -> Void) -> (values: Int, errors: Int) {
        var mutator = Mutator(seed: FuzzSettings.seed ^ family.utf8.reduce(UInt64(5381)) { ($0 &* 33) &+ UInt64($1) })
        var values = 0, errors = 0
        for i in 0..<FuzzSettings.cases {
            do { try body(i, &mutator); values += 1 } catch { errors += 1 }
        }
        if FuzzSettings.cases > 1000 { print("fuzz \(family): \(FuzzSettings.cases) cases, \(values) values, \(errors) errors, no trap") }
        return (values, errors)
    }
}

@Suite struct FuzzTests {
    @Test func safetensors() throws {
        let dir = try Fuzz.scratch("safetensors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f32 = dir.appendingPathComponent("seed32.safetensors"), f16 = dir.appendingPathComponent("seed16.safetensors")
        let a = try Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0) - 5.5 })
        let b = try Tensor(shape: [5], scalars: [1, -2, 3.5, 1e30, -0.0])
        try writeSafetensors([("a", a), ("b", b)], metadata: ["format": "pt"], to: f32)
        try writeSafetensors([("a", a), ("b", b)], float16: true, to: f16)
        let bf16Header = #"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}"#
        let bf16 = Array(withUnsafeBytes(of: UInt64(bf16Header.utf8.count).littleEndian, Array.init)) + Array(bf16Header.utf8)
            + [0x80, 0x3F, 0x00, 0x40, 0x40, 0x40, 0x80, 0xBF]
        let seeds = [try Fuzz.bytes(f32), try Fuzz.bytes(f16), bf16]
        let path = dir.appendingPathComponent("case.safetensors")
        let outcome = Fuzz.run("safetensors") { i, m in
            let seed = seeds[i % seeds.count]
            try Fuzz.write(Fuzz.mutate(safetensors: seed, &m), path)
            let file = try SafetensorsFile(path: path.path)
            for name in file.names { _ = try file.tensor(name) }
        }
        #expect(outcome.errors > 0, "mutations must break some files")
    }

    @Test func gguf() throws {
        let dir = try Fuzz.scratch("gguf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = ["metadata", "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"]
        let seeds = try names.map { try Fuzz.bytes(Fuzz.fixtures.appendingPathComponent("gguf/\($0).gguf")) }
        let path = dir.appendingPathComponent("case.gguf")
        let outcome = Fuzz.run("gguf") { i, m in
            try Fuzz.write(m.mutate(bytes: seeds[i % seeds.count]), path)
            let file = try GGUFFile(path: path.path)
            for name in file.tensorNames { _ = try file.tensor(name) }
            for key in file.metadataKeys { _ = try? file.value(key) }
            // Read in place: products over whatever the mutated blocks hold (NaN scales included).
            for info in file.tensorInfos where info.dims.count == 2 {
                let m = try file.matrix(info.name)
                let x = [Float](repeating: 0.5, count: m.columns * 2)
                var y = [Float](repeating: 0, count: m.rows * 2)
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { m.multiply(xp.baseAddress!, rows: 2, into: $0.baseAddress!) } }
            }
        }
        #expect(outcome.errors > 0)
    }

    /// Whole GGUF models: a tiny Llama GGUF with its own byte-level BPE tokenizer, mutated, then loaded as a user's
    /// file is (metadata → config → tokenizer → weights read in place), text encoded, a forward pass run.
    @Test func ggufModels() throws {
        let dir = try Fuzz.scratch("gguf-model")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seed = try Fuzz.bytes(Fuzz.fixtures.appendingPathComponent("gguf/llama-tiny.gguf"))
        let path = dir.appendingPathComponent("case.gguf")
        let outcome = Fuzz.run("gguf-model") { i, m in
            try Fuzz.write(m.mutate(bytes: seed), path)
            let loaded = try ModelLoader.load(path: path.path)
            let ids = loaded.tokenizer?.encodeForModel("the cat<|endoftext|> sat\u{1F99C}") ?? [0, 1, 2]
            _ = try loaded.tokenizer?.decode(ids)
            _ = try loaded.model.run([Array(ids.prefix(8))])
        }
        #expect(outcome.errors > 0)
        #expect(outcome.values > 0, "some mutations (in weights) must still load and run")
    }

    /// Model folders: a mutated config.json next to real weights of each family (and mutated weights).
    @Test func modelFolders() throws {
        let dir = try Fuzz.scratch("config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let families = ["zoo/llama3", "zoo/mistral", "zoo/qwen2", "zoo/qwen3", "zoo/gemma3", "zoo/pythia", "zoo/phi3", "gpt2-tiny", "bert"]
        let seeds = try families.map { f -> (config: [UInt8], weights: URL) in
            let folder = Fuzz.fixtures.appendingPathComponent(f)
            return (try Fuzz.bytes(folder.appendingPathComponent("config.json")), folder.appendingPathComponent("model.safetensors"))
        }
        let folder = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let outcome = Fuzz.run("config") { i, m in
            let seed = seeds[i % seeds.count]
            let weights = folder.appendingPathComponent("model.safetensors")
            try? FileManager.default.removeItem(at: weights)
            if m.below(8) == 0 {
                try Fuzz.write(m.mutate(bytes: try Fuzz.bytes(seed.weights)), weights)
                try Fuzz.write(seed.config, folder.appendingPathComponent("config.json"))
            } else {
                try FileManager.default.createSymbolicLink(at: weights, withDestinationURL: seed.weights)
                try Fuzz.write(m.mutate(json: seed.config), folder.appendingPathComponent("config.json"))
            }
            let loaded = try ModelLoader.load(path: folder.path)
            _ = try loaded.model.run([[0, 1, 2]])
        }
        #expect(outcome.errors > 0)
    }

    /// tokenizer.json, and GPT-2's encoder.json + vocab.bpe, from a small trained tokenizer.
    @Test func tokenizerFiles() throws {
        let dir = try Fuzz.scratch("tokenizer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seedDir = dir.appendingPathComponent("seed")
        let text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
        let trained = try BPETrainer(vocabSize: 300, specialTokens: ["<|endoftext|>"], minFrequency: 1).train(texts: [text, text.uppercased()])
        _ = try trained.write(to: seedDir)
        let tokenizerJSON = try Fuzz.bytes(seedDir.appendingPathComponent("tokenizer.json"))
        let encoder = try Fuzz.bytes(seedDir.appendingPathComponent("encoder.json"))
        let merges = try Fuzz.bytes(seedDir.appendingPathComponent("vocab.bpe"))
        // A WordPiece (BERT) tokenizer.json: normalizer, pre-tokenizer, template and model settings to mutate.
        let wordPiece = Array(#"""
            {"added_tokens": [{"id": 0, "content": "[PAD]", "special": true}, {"id": 1, "content": "[UNK]", "special": true},
              {"id": 2, "content": "[CLS]", "special": true}, {"id": 3, "content": "[SEP]", "special": true}],
             "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
             "pre_tokenizer": {"type": "BertPreTokenizer"},
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
               "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2]}, "[SEP]": {"id": "[SEP]", "ids": [3]}}},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
               "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "##a": 5, "single": 6, "man": 7, "##n": 8, "!": 9}}}
            """#.utf8)
        let caseDir = dir.appendingPathComponent("case")
        try FileManager.default.createDirectory(at: caseDir, withIntermediateDirectories: true)
        let outcome = Fuzz.run("tokenizer") { i, m in
            let tokenizer: BPETokenizer
            switch i % 4 {
            case 3:
                try Fuzz.write(m.mutate(json: wordPiece), caseDir.appendingPathComponent("tokenizer.json"))
                tokenizer = try BPETokenizer(tokenizerJSON: caseDir.appendingPathComponent("tokenizer.json"))
            case 0:
                try Fuzz.write(m.mutate(json: tokenizerJSON), caseDir.appendingPathComponent("tokenizer.json"))
                tokenizer = try BPETokenizer(tokenizerJSON: caseDir.appendingPathComponent("tokenizer.json"))
            case 1:
                try Fuzz.write(m.mutate(json: encoder), caseDir.appendingPathComponent("encoder.json"))
                try Fuzz.write(merges, caseDir.appendingPathComponent("vocab.bpe"))
                tokenizer = try BPETokenizer(encoderJSON: caseDir.appendingPathComponent("encoder.json"), vocabBPE: caseDir.appendingPathComponent("vocab.bpe"))
            default:
                try Fuzz.write(encoder, caseDir.appendingPathComponent("encoder.json"))
                try Fuzz.write(m.mutate(bytes: merges), caseDir.appendingPathComponent("vocab.bpe"))
                tokenizer = try BPETokenizer(encoderJSON: caseDir.appendingPathComponent("encoder.json"), vocabBPE: caseDir.appendingPathComponent("vocab.bpe"))
            }
            let ids = tokenizer.encodeForModel("a single man <|endoftext|> ünïcode \u{1F99C} 中文 [SEP]")
            _ = try tokenizer.decode(ids)
        }
        #expect(outcome.errors > 0)
    }

    @Test func probeDatasets() throws {
        let dir = try Fuzz.scratch("jsonl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = [#"{"text": "Mr. Darcy said", "label": "speech", "position": -1}"#,
                     #"{"text": "The sun rose", "label": "narration", "position": 0}"#,
                     #"{"text": "She laughed", "label": 1.5, "position": -2}"#]
        let path = dir.appendingPathComponent("case.jsonl")
        _ = Fuzz.run("jsonl") { i, m in
            var out = lines.map { Array($0.utf8) }
            let k = m.below(out.count)
            out[k] = m.below(2) == 0 ? m.mutate(json: out[k]) : m.mutate(bytes: out[k])
            try Fuzz.write(Array(out.joined(separator: [0x0A])), path)
            _ = try loadProbeDataset(path: path.path)
        }
    }

    @Test func saeFolders() throws {
        let dir = try Fuzz.scratch("sae")
        defer { try? FileManager.default.removeItem(at: dir) }
        let seeds = try ["saelens-topk", "saelens-standard"].map { name -> (cfg: [UInt8], weights: [UInt8]) in
            let folder = Fuzz.fixtures.appendingPathComponent("sae/\(name)")
            return (try Fuzz.bytes(folder.appendingPathComponent("cfg.json")), try Fuzz.bytes(folder.appendingPathComponent("sae_weights.safetensors")))
        }
        let outcome = Fuzz.run("sae") { i, m in
            let seed = seeds[i % seeds.count]
            let mutateConfig = m.below(2) == 0
            try Fuzz.write(mutateConfig ? m.mutate(json: seed.cfg) : seed.cfg, dir.appendingPathComponent("cfg.json"))
            try Fuzz.write(mutateConfig ? seed.weights : m.mutate(bytes: seed.weights), dir.appendingPathComponent("sae_weights.safetensors"))
            let sae = try SAELensFormat.read(from: dir)
            _ = try sae.encode(Tensor(zeros: [2, sae.config.dIn]))
        }
        #expect(outcome.errors > 0)
    }

    /// A built neuron index with its bytes mutated: SQLite's own checks, then Loupe's row checks.
    @Test func neuronIndexDatabases() throws {
        let dir = try Fuzz.scratch("sqlite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try ModelLoader.load(path: Fuzz.fixtures.appendingPathComponent("gpt2-tiny").path).model
        let seedPath = dir.appendingPathComponent("seed.sqlite")
        // Three documents in two shards: the seed is shard 1/2 (documents 0 and 1).
        let documents = [(0..<32).map { $0 * 31 % 50257 }, (0..<20).map { $0 * 17 % 50257 }, [5, 6, 7]]
        let index = try NeuronExampleIndex(path: seedPath.path, model: model, layer: 0, corpus: CorpusIdentity(digest: "fuzz", documents: 3),
                                           shard: try Shard(parsing: "1/2"), k: 2, context: 1, window: 16)
        try model.buildNeuronIndex(index, document: { documents[$0] })
        let seed = try Fuzz.bytes(seedPath)
        let path = dir.appendingPathComponent("case.sqlite")
        let other = dir.appendingPathComponent("shard2.sqlite").path
        try model.buildNeuronIndex(try NeuronExampleIndex(path: other, model: model, layer: 0, corpus: CorpusIdentity(digest: "fuzz", documents: 3),
                                                          shard: try Shard(parsing: "2/2"), k: 2, context: 1, window: 16),
                                   document: { documents[$0] })
        let merged = dir.appendingPathComponent("merged.sqlite").path
        _ = Fuzz.run("sqlite") { _, m in
            try? FileManager.default.removeItem(at: path)
            try Fuzz.write(m.mutate(bytes: seed), path)
            // Read (neurons --db), merged with the other shard (loupe merge), resumed (neuron-index).
            let reader = try NeuronExampleIndex(openExisting: path.path, model: model, layer: 0)
            _ = try reader.allExamples()
            try? FileManager.default.removeItem(atPath: merged)
            try NeuronExampleIndex.merge(shards: [path.path, other], into: merged)
            let writer = try NeuronExampleIndex(path: path.path, model: model, layer: 0, corpus: CorpusIdentity(digest: "fuzz", documents: 3),
                                                shard: try Shard(parsing: "1/2"), k: 2, context: 1, window: 16)
            try model.buildNeuronIndex(writer, document: { documents[$0] })
        }
    }

    /// Activation-statistics shards with their bytes or header mutated: read (the manifest, the F64 sums),
    /// merged with an intact shard, resumed.
    @Test func activationStatistics() throws {
        let dir = try Fuzz.scratch("stats")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try ModelLoader.load(path: Fuzz.fixtures.appendingPathComponent("gpt2-tiny").path).model
        let documents = [(0..<20).map { $0 * 31 % 50257 }, (0..<9).map { $0 * 17 % 50257 }, [5, 6, 7]]
        let corpus = CorpusIdentity(digest: "fuzz", documents: 3)
        func fresh(_ shard: String) throws -> ActivationStatistics {
            try ActivationStatistics(model: model, hook: .residPost(0), corpus: corpus, shard: Shard(parsing: shard), window: 8)
        }
        let seedPath = dir.appendingPathComponent("seed.safetensors").path, other = dir.appendingPathComponent("other.safetensors").path
        try model.accumulateStatistics(fresh("1/2"), path: seedPath, document: { documents[$0] })
        try model.accumulateStatistics(fresh("2/2"), path: other, document: { documents[$0] })
        let seed = try Fuzz.bytes(URL(fileURLWithPath: seedPath))
        let path = dir.appendingPathComponent("case.safetensors"), merged = dir.appendingPathComponent("merged.safetensors").path
        let outcome = Fuzz.run("stats") { _, m in
            try Fuzz.write(Fuzz.mutate(safetensors: seed, &m), path)
            let stats = try ActivationStatistics(contentsOf: path.path)
            _ = stats.covariance
            try? FileManager.default.removeItem(atPath: merged)
            try ActivationStatistics.merge(shards: [path.path, other], into: merged)
            try model.accumulateStatistics(fresh("1/2"), path: path.path, document: { documents[$0] })
        }
        #expect(outcome.errors > 0)
    }

    /// Tuned lenses (as `loupe train tuned-lens` saves them) with their header or bytes mutated: load, check
    /// against the model, translate a residual at every layer.
    @Test func tunedLenses() throws {
        let dir = try Fuzz.scratch("lens")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try ModelLoader.load(path: Fuzz.fixtures.appendingPathComponent("gpt2-tiny").path).model
        let d = model.config.dModel
        var rng = SeededGenerator(seed: 7, stream: 1)
        let lens = try TunedLens(weights: (0..<model.config.nLayers).map { _ in try Tensor(shape: [d, d], scalars: (0..<(d * d)).map { _ in Float(rng.nextGaussian()) * 0.01 }) },
                                 biases: (0..<model.config.nLayers).map { _ in Tensor(zeros: [d]) }, modelName: "gpt2-tiny")
        let seedPath = dir.appendingPathComponent("seed.safetensors")
        try lens.save(to: seedPath, extra: ["steps": "10"])
        let seed = try Fuzz.bytes(seedPath)
        let path = dir.appendingPathComponent("case.safetensors")
        let residual = Tensor(zeros: [3, d])
        let outcome = Fuzz.run("lens") { _, m in
            try Fuzz.write(Fuzz.mutate(safetensors: seed, &m), path)
            let read = try TunedLens.load(path: path.path)
            try read.check(against: model.config)
            for l in 0..<read.nLayers { _ = try read.translate(residual, layer: l) }
        }
        #expect(outcome.errors > 0)
    }

    /// Training checkpoints (`loupe train … --resume`) with their header (metadata: the config and settings
    /// as JSON, the step) or bytes mutated: resume, then train one more step.
    @Test func trainingCheckpoints() throws {
        let dir = try Fuzz.scratch("checkpoint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let task = MaxOfListTask()
        var settings = task.defaultSettings(seed: 3)
        (settings.steps, settings.optimizer.totalSteps, settings.checkpointEvery) = (2, 2, 0)
        let trainer = try Trainer(config: task.config, settings: settings)
        try trainer.train(task)
        let seedDir = dir.appendingPathComponent("seed")
        try trainer.saveCheckpoint(to: seedDir)
        let seed = try Fuzz.bytes(seedDir.appendingPathComponent("checkpoint.safetensors"))
        let caseDir = dir.appendingPathComponent("case")
        try FileManager.default.createDirectory(at: caseDir, withIntermediateDirectories: true)
        let outcome = Fuzz.run("checkpoint") { _, m in
            try Fuzz.write(Fuzz.mutate(safetensors: seed, &m), caseDir.appendingPathComponent("checkpoint.safetensors"))
            let resumed = try Trainer.resume(from: caseDir, steps: 3)
            // One step more: the model and optimizer state built from the file must work together.
            if resumed.step < 3, resumed.config.nCtx <= 64, resumed.config.dModel <= 256, resumed.config.dVocab <= 512 {
                try resumed.train(task)
            }
        }
        #expect(outcome.errors > 0)
    }

    /// Corpora: mutated plain text and JSON Lines files split into documents, every document decoded.
    @Test func corpora() throws {
        let dir = try Fuzz.scratch("corpus")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = Array("First paragraph, with é and 日本.\n\nSecond one\r\n\r\nthird\nline\n".utf8)
        let lines = Array(#"{"text": "one \u00e9", "id": 1}"#.utf8) + [0x0A] + Array(#""two""#.utf8) + [0x0A, 0x0A]
            + Array(#"{"text": "three", "meta": {"a": [1, 2]}}"#.utf8)
        let outcome = Fuzz.run("corpus") { i, m in
            let jsonl = i % 2 == 1
            let path = dir.appendingPathComponent(jsonl ? "case.jsonl" : "case.txt")
            let bytes: [UInt8]
            if jsonl {
                // One line edited as JSON, or the file's bytes mutated.
                var parts = lines.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
                let k = m.below(parts.count)
                if m.below(2) == 0, !parts[k].isEmpty { parts[k] = m.mutate(json: parts[k]) } else { parts = [m.mutate(bytes: lines)] }
                bytes = Array(parts.joined(separator: [0x0A]))
            } else {
                bytes = m.mutate(bytes: text)
            }
            try Fuzz.write(bytes, path)
            let corpus = try Corpus(paths: [path.path], documentBytes: 1 + m.below(24))
            var total = 0
            for d in 0..<corpus.count { total += try corpus.text(d).utf8.count }
            // Plain text documents, decoded, are the file: nothing lost or repeated at the cuts.
            if !jsonl { #expect(total == bytes.count) }
        }
        #expect(outcome.errors > 0)
    }

    /// Request bodies against a running explorer: every answer is a 2xx or a 4xx with a message (a 500 would
    /// mean an error the server did not expect), and the server keeps answering.
    @Test func requestBodies() async throws {
        let fixture = Fuzz.fixtures.appendingPathComponent("gpt2-tiny").path
        let server = try ExplorerServer(configuration: ExplorerConfiguration(
            host: "127.0.0.1", port: 0, models: ExplorerModel.catalog(extra: [fixture]), preload: ["gpt2-tiny"],
            limits: ExplorerLimits(maxBodyBytes: 16384, maxPromptTokens: 32, maxActiveJobs: 1), quiet: true))
        let (port, task) = try await ExplorerUnderTest.start(server)
        defer { task.cancel() }
        let seeds: [(String, String)] = [
            ("/api/tokens", #"{"model": "gpt2-tiny", "prompt": "Hello world"}"#),
            ("/api/predict", #"{"model": "gpt2-tiny", "prompt": "Hello", "topK": 3}"#),
            ("/api/predict", #"{"model": "gpt2-tiny", "ids": [1, 2, 3]}"#),
            ("/api/lens", #"{"model": "gpt2-tiny", "prompt": "a b c", "position": -1, "topK": 2, "target": " c"}"#),
            ("/api/attention", #"{"model": "gpt2-tiny", "prompt": "a b c", "layer": 1, "head": 2}"#),
            ("/api/heads", #"{"model": "gpt2-tiny", "length": 8, "seed": 3}"#),
            ("/api/neurons", #"{"model": "gpt2-tiny", "layer": 0, "top": 2, "prompt": "a b c d"}"#),
            ("/api/jobs", #"{"model": "gpt2-tiny", "clean": "a b", "corrupt": "a c", "answer": " c", "wrong": " b", "hook": "blocks.0.hook_resid_pre"}"#),
            ("/api/token", #"{"model": "gpt2-tiny", "text": "Mary"}"#),
            ("/api/neuron", #"{"model": "gpt2-tiny", "layer": 1, "neuron": 5, "topK": 3, "examples": 4}"#),
            ("/api/attribute", #"{"model": "gpt2-tiny", "prompt": "a b c", "answer": " c", "wrong": " b", "position": -1}"#),
            ("/api/attention", #"{"model": "gpt2-tiny", "prompt": "a b c", "all": true}"#),
            ("/api/trace", #"{"model": "gpt2-tiny", "prompt": "The Eiffel Tower is in", "subject": "Eiffel Tower", "answer": " Paris", "kind": "mlp", "window": 2, "samples": 2, "noise": 0.5, "seed": 1}"#),
            ("/api/path-patch", #"{"model": "gpt2-tiny", "clean": "a b c", "corrupt": "a c c", "answer": " c", "wrong": " b", "receiver": "1:0,2:q"}"#),
        ]
        var mutator = Mutator(seed: FuzzSettings.seed)
        var unexpected: [String] = []
        var statuses: [Int: Int] = [:]
        for i in 0..<FuzzSettings.cases {
            let (path, body) = seeds[i % seeds.count]
            let mutated = mutator.mutate(json: Array(body.utf8))
            let answer = try await RawHTTP.send("POST", path, port: port, host: "127.0.0.1:\(port)",
                                             headers: ["Content-Type": "application/json"], body: mutated)
            statuses[answer.status, default: 0] += 1
            if !(200..<500).contains(answer.status) && answer.status != 503 {
                unexpected.append("\(path) \(String(decoding: mutated.prefix(200), as: UTF8.self)) → \(answer.status) \(answer.error)")
            }
        }
        if FuzzSettings.cases > 1000 {
            print("fuzz http: \(FuzzSettings.cases) requests, statuses \(statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " "))")
        }
        #expect(unexpected.isEmpty, "\(unexpected.count) unexpected answers; first: \(unexpected.prefix(3).joined(separator: "\n"))")
        let health = try await RawHTTP.send("GET", "/api/health", port: port, host: "127.0.0.1:\(port)")
        #expect(health.status == 200)
    }
}
