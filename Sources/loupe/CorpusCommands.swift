// Corpus jobs: work over a whole corpus that can be split by document into shards (`--shard I/N`), one a
// machine (a Slurm array task, a Kubernetes Indexed Job pod), each resumable, then combined by `loupe merge`.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeRender
import LoupeStore

/// The corpus and the shard of it a job reads.
struct CorpusOptions: ParsableArguments {
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption,
            help: "Text files, .jsonl files (one document a line: {\"text\": …}) or folders of them, in order.")
    var corpus: [String] = []

    @Option(name: .long, help: "Do part I of N of the job (1-based: 1/4 … 4/4), split by document; merge the parts with `loupe merge`.",
            transform: { try Shard(parsing: $0) })
    var shard: Shard = .whole

    @Option(name: .long, parsing: .unconditional, help: "Plain text is cut into documents at the first blank line after this many bytes.",
            transform: Count.positive)
    var documentBytes: Int = Corpus.defaultDocumentBytes

    func validate() throws {
        guard !corpus.isEmpty else { throw ValidationError("give the corpus: --corpus FILE_OR_FOLDER …") }
    }

    func open() throws -> Corpus { try Corpus(paths: corpus, documentBytes: documentBytes) }
}

/// Progress through a shard's documents, measured in their bytes: a bar on a terminal, and a line every
/// tenth of the way in a log (a cluster job's standard error is a file).
final class ShardProgress {
    private let bar: ProgressBar
    private let total: Int
    private let first: Int
    private let offsets: [Int]   // bytes before each of the shard's documents
    private var logged = 0
    private let logging = isatty(STDERR_FILENO) == 0
    private let label: String

    init(corpus: Corpus, documents: Range<Int>, label: String) {
        var offsets = [0]
        for d in documents { offsets.append(offsets.last! + corpus.byteCount(of: d)) }
        self.offsets = offsets
        total = offsets.last!
        first = documents.lowerBound
        self.label = label
        bar = ProgressBar(total: total, label: label)
    }

    /// At document `document`, `position` of its `length` tokens; `tokens` indexed in all.
    func update(document: Int, position: Int, length: Int, tokens: Int) {
        let i = document - first
        guard i >= 0, i < offsets.count else { return }
        let within = i + 1 < offsets.count && length > 0 ? Int(Double(offsets[i + 1] - offsets[i]) * Double(position) / Double(length)) : 0
        let done = offsets[i] + within
        let extra = "bytes, document \(document), \(tokens) tokens"
        bar.update(completed: done, extra: extra)
        if logging, total > 0, done * 10 / total > logged {
            logged = done * 10 / total
            FileHandle.standardError.write(Data("\(label): \(logged * 10)% (\(extra))\n".utf8))
        }
    }

    func finish() { bar.finish() }
}

struct NeuronIndex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-index",
        abstract: "Index every neuron's max-activating examples of one layer over a corpus into SQLite (resumable, shardable).",
        discussion: """
            The corpus is read document by document (a .jsonl line, or about --document-bytes of plain text), \
            in windows that never cross documents. Run the same command again to resume after an \
            interruption; a finished index is left as it is. With --shard I/N the command indexes part I of N \
            (one per machine); `loupe merge OUT SHARD…` combines the parts into the index one run would build. \
            Read the examples with `loupe neurons --db PATH`.

            Example:
              loupe neuron-index --model smollm2-135m --layer 20 --corpus books/ --db l20-part2.sqlite --shard 2/8
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "The layer.", transform: Count.nonNegative) var layer: Int
    @OptionGroup var corpusOptions: CorpusOptions
    @Option(name: .long, help: "The SQLite file to build or resume.") var db: String
    @Option(name: .long, parsing: .unconditional, help: "Examples kept per neuron.", transform: Count.positive) var k: Int = 10
    @Option(name: .long, parsing: .unconditional, help: "Context tokens kept either side.", transform: Count.nonNegative) var context: Int = 8
    @Option(name: .long, parsing: .unconditional, help: "Tokens per forward pass (default: 128, or the model's context if shorter).", transform: Count.positive)
    var window: Int?
    @Flag(name: .long, help: "Print the index's manifest as JSON when done.") var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let window = self.window ?? min(128, loaded.model.config.nCtx)
        let corpus = try corpusOptions.open()
        let shard = corpusOptions.shard
        let index = try NeuronExampleIndex(path: db, model: loaded.model, layer: layer, corpus: corpus.identity, shard: shard,
                                           k: k, context: context, window: window)
        let before = index.manifest
        let documents = before.firstDocument..<before.endDocument
        let part = shard == .whole ? "" : "shard \(shard) (documents \(documents.lowerBound)..<\(documents.upperBound) of \(corpus.count)) "
        if before.finished {
            if json { try printJSON(before); return }
            print("\(db): \(part.isEmpty ? "" : part + "is ")already finished (\(before.tokens) tokens); nothing to do")
            return
        }
        if before.tokens > 0 {
            FileHandle.standardError.write(Data("resuming \(part)at document \(before.nextDocument), token \(before.nextPosition) (\(before.tokens) tokens indexed)\n".utf8))
        }
        let began = Date()
        let progress = ShardProgress(corpus: corpus, documents: documents, label: "neuron-index")
        var lengths: [Int: Int] = [:]
        let after = try loaded.model.buildNeuronIndex(index, document: { d in
            let tokens = try tokenizer.encodeForModel(corpus.text(d))
            lengths = [d: tokens.count]
            return tokens
        }) { state in
            progress.update(document: state.nextDocument, position: state.nextPosition, length: lengths[state.nextDocument] ?? 1, tokens: state.tokens)
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(began)
        if json { try printJSON(after); return }
        let thisRun = after.tokens - before.tokens
        print(String(format: "indexed %@%d tokens of layer %d into %@ (%d this run in %.0f s, %.0f tokens/s)",
                     part, after.tokens, layer, db, thisRun, seconds, Double(thisRun) / max(seconds, 1e-3)))
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Combine the shard results of one corpus job (`--shard I/N`) into the result of one whole run.",
        discussion: """
            Neuron indexes: every neuron's k best examples over all shards; activation statistics: counts \
            and sums added. Every shard 1/N … N/N must be \
            given once and finished, and all must come from the same model, corpus and settings; OUT must not \
            exist. The merged file is written under a temporary name and renamed when complete.

            Example:
              loupe merge l20.sqlite l20-part*.sqlite
            """)

    @Argument(help: "The merged result to write.") var output: String
    @Argument(help: "The shard results.") var shards: [String] = []
    @Flag(name: .long, help: "Print the merged manifest as JSON.") var json = false

    func validate() throws {
        guard !shards.isEmpty else { throw ValidationError("give the shard results after OUT: loupe merge OUT SHARD…") }
    }

    func run() throws {
        let began = Date()
        // The kind of result is read from the first shard's bytes: SQLite's header, else safetensors.
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: shards[0])).read(upToCount: 16) ?? Data()
        let record: ShardRecord
        if head.starts(with: Array("SQLite format 3\0".utf8)) {
            let merged = try NeuronExampleIndex.merge(shards: shards, into: output)
            if json { try printJSON(merged); return }
            record = merged.record
        } else {
            let merged = try ActivationStatistics.merge(shards: shards, into: output)
            if json { try printJSON(StatisticsSummary(merged)); return }
            record = merged.record
        }
        print(String(format: "merged %d shards (%d documents, %d tokens) into %@ in %.2f s",
                     record.mergedFrom, record.documents, record.tokens, output, Date().timeIntervalSince(began)))
    }
}

/// A statistics file's manifest and headline figures, for --json.
struct StatisticsSummary: Encodable {
    let hook: String, width: Int, window: Int, outer: Bool, count: Int
    let meanNorm: Double
    let record: ShardRecord

    init(_ s: ActivationStatistics) {
        (hook, width, window, outer, count, record) = (s.hook, s.width, s.window, s.outer, s.count, s.record)
        meanNorm = s.mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
}

struct ActivationStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activation-stats",
        abstract: "Mean and second moment of one hook point over a corpus, into safetensors (resumable, shardable).",
        discussion: """
            Counts every position of every window (documents read as by neuron-index) and keeps, in float64, \
            the sum and the sum of outer products of the hook's activations: the mean, E[x xᵀ] (ROME's key \
            statistics at blocks.L.mlp.hook_post) and the covariance follow. The file holds sum, sum_outer \
            (F64), mean and second_moment (F32), with the manifest in its metadata. Run it again to resume; \
            with --shard I/N it computes part I of N, and `loupe merge` adds the parts.

            Example:
              loupe activation-stats --model smollm2-135m --hook blocks.10.mlp.hook_post --corpus books/ --out l10-keys.safetensors
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Hook point, e.g. blocks.10.mlp.hook_post.") var hook: String
    @OptionGroup var corpusOptions: CorpusOptions
    @Option(name: .long, help: "The safetensors file to write or resume.") var out: String
    @Option(name: .long, parsing: .unconditional, help: "Tokens per forward pass (default: 128, or the model's context if shorter).", transform: Count.positive)
    var window: Int?
    @Flag(name: .long, help: "Keep only the count and sum (no width² sum of outer products).") var noOuter = false
    @Flag(name: .long, help: "Print the result's manifest and headline figures as JSON.") var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let hookName = try HookName(parsing: hook)
        let window = self.window ?? min(128, loaded.model.config.nCtx)
        let corpus = try corpusOptions.open()
        let fresh = try ActivationStatistics(model: loaded.model, hook: hookName, corpus: corpus.identity, shard: corpusOptions.shard,
                                             window: window, outer: !noOuter)
        let shard = corpusOptions.shard
        let documents = fresh.firstDocument..<fresh.endDocument
        let part = shard == .whole ? "" : "shard \(shard) (documents \(documents.lowerBound)..<\(documents.upperBound) of \(corpus.count)) "
        let began = Date()
        let progress = ShardProgress(corpus: corpus, documents: documents, label: "activation-stats")
        var lengths: [Int: Int] = [:]
        let stats = try loaded.model.accumulateStatistics(fresh, path: out, document: { d in
            let tokens = try tokenizer.encodeForModel(corpus.text(d))
            lengths = [d: tokens.count]
            return tokens
        }) { record in
            progress.update(document: record.nextDocument, position: record.nextPosition, length: lengths[record.nextDocument] ?? 1, tokens: record.tokens)
        }
        progress.finish()
        if json { try printJSON(StatisticsSummary(stats)); return }
        let seconds = Date().timeIntervalSince(began)
        let mean = stats.mean
        print(String(format: "%@%@ over %d positions (width %d) into %@ in %.0f s; |mean| = %.4f",
                     part, hook, stats.count, stats.width, out, seconds, mean.reduce(0) { $0 + $1 * $1 }.squareRoot()))
    }
}
