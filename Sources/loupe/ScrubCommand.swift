// `loupe scrub`: causal scrubbing of a hypothesis (built-in or a JSON file) on repeated random tokens or a text.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels

struct Scrub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrub",
        abstract: "Causal scrubbing: how much of the model's loss a hypothesis about its paths recovers.",
        discussion: """
            A hypothesis keeps edges from senders (embed, L{layer}H{head}, mlp{layer}, or * for all) to \
            receiver inputs (logits, L{layer}H{head}.q|k|v, L{layer}H{head} for all three, mlp{layer}, or *). \
            Every part of a receiver's input that the hypothesis does not keep is taken from another sequence \
            of the dataset; kept parts are computed on the same sequence, under the hypothesis. \
            loss_recovered = (fully scrubbed − scrubbed) / (fully scrubbed − model): 1 for the model itself \
            (full), 0 for the logits' whole input resampled (none).

            Built-in hypotheses: full, none, induction (the model's strongest induction head: its key reads only \
            the strongest previous-token head of an earlier layer, which reads only the embeddings; its query \
            and value read only the embeddings; every other input is kept). A file is JSON: {"name": …, "edges": [{"from": "L0H3", "to": "L1H5.k"}, …], \
            "resample": "together"|"separately"}.

            The dataset is --sequences sequences of --length tokens sampled from the model (or, with --data \
            random, uniform random tokens), each repeated once (loss scored on the repeat, where induction works), or windows of --text FILE (loss on every position; with \
            --repeat, each window repeated and the loss scored on the repeat).

            Examples:
              loupe scrub --hypothesis induction
              loupe scrub --hypothesis my-hypothesis.json --json
              loupe scrub --model smollm2-135m --hypothesis induction --text book.txt --length 64
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "full, none, induction, or a hypothesis JSON file.") var hypothesis: String
    @Option(name: .long, parsing: .unconditional, help: "How many sequences.", transform: Count.positive) var sequences: Int = 20
    @Option(name: .long, parsing: .unconditional, help: "Random tokens before the repeat (or, with --text, tokens per window).", transform: Count.positive)
    var length: Int = 24
    @Option(name: [.customLong("text"), .customLong("corpus")], help: "Windows of this text file instead of repeated random tokens.") var text: String?
    enum Source: String, ExpressibleByArgument, CaseIterable { case sampled, random }
    @Option(name: .long, help: "Without --text: sequences sampled from the model (temperature 1) or uniform random tokens, each repeated.")
    var data: Source = .sampled
    @Flag(name: .long, help: "With --text: each window followed by itself, the loss scored on the repeat (where induction works).") var `repeat` = false
    @Option(name: .long, help: "Seed of the random tokens and of the resampling.") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print JSON: hypothesis, edges, model_loss, scrubbed_loss, fully_scrubbed_loss, loss_recovered.") var json = false

    struct Output: Encodable {
        let hypothesis: String; let description: String?; let edges: [ScrubHypothesis.Edge]; let rest: String
        let sequences: Int; let tokens_per_sequence: Int; let scored_from: Int
        let model_loss: Float; let scrubbed_loss: Float; let fully_scrubbed_loss: Float; let loss_recovered: Float
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        guard sequences >= 2 else { throw ValidationError("--sequences must be at least 2: scrubbing resamples between sequences") }
        guard !`repeat` || text != nil else { throw ValidationError("--repeat repeats windows of --text; without --text the random tokens are always repeated") }
        // The dataset.
        var dataset: [[Int]] = []
        let from: Int
        if let text {
            let tokens = try loaded.requireTokenizer().encode(try readText(text, chars: nil), allowSpecial: false)
            let span = `repeat` ? 2 * length : length
            guard length >= 2, span <= model.config.nCtx else {
                throw ValidationError("--length must be between 2 and the model's context (\(model.config.nCtx)\(`repeat` ? ", repeated" : "")) with --text")
            }
            guard tokens.count >= sequences * length else {
                throw ValidationError("--text \(text) has \(tokens.count) tokens; \(sequences) windows of \(length) need \(sequences * length)")
            }
            dataset = (0..<sequences).map { Array(tokens[($0 * length)..<(($0 + 1) * length)]) }
            if `repeat` { dataset = dataset.map { $0 + $0 } }
            from = `repeat` ? length : 0
        } else {
            guard 2 * length <= model.config.nCtx else { throw ValidationError("--length \(length) repeated is longer than the model's context (\(model.config.nCtx))") }
            var rng = SeededGenerator(seed: seed, stream: 17)
            let floor = min(100, model.config.dVocab / 2)
            for i in 0..<sequences {
                let start = model.config.eosTokenID ?? (floor + rng.nextInt(model.config.dVocab - floor))
                let half = data == .random ? (0..<length).map { _ in floor + rng.nextInt(model.config.dVocab - floor) }
                    : try model.generate(prompt: [start], maxTokens: length, sampling: SamplingOptions(temperature: 1, seed: seed &+ UInt64(i)))
                dataset.append(half + half)
            }
            from = length
        }
        let chosen = try resolve(model)
        let progress = ProgressReporter("scrubbing")
        let result = try model.causalScrub(chosen, sequences: dataset, lossFrom: from, seed: seed) { done, total in progress.update(done, total, extra: "sequences") }
        progress.finish()
        if json {
            try printJSON(Output(hypothesis: chosen.name, description: chosen.description, edges: chosen.edges, rest: (chosen.rest ?? .resampled).rawValue, sequences: dataset.count,
                                 tokens_per_sequence: dataset[0].count, scored_from: from, model_loss: result.modelLoss,
                                 scrubbed_loss: result.scrubbedLoss, fully_scrubbed_loss: result.fullyScrubbedLoss,
                                 loss_recovered: result.lossRecovered))
            return
        }
        print("hypothesis \(chosen.name)\(chosen.description.map { ": \($0)" } ?? "")")
        print("\(dataset.count) sequences of \(dataset[0].count) tokens, loss on positions \(from)…\(dataset[0].count - 2)")
        print(String(format: "model loss %.4f   scrubbed %.4f   fully scrubbed %.4f", result.modelLoss, result.scrubbedLoss, result.fullyScrubbedLoss))
        print(String(format: "loss recovered %.3f", result.lossRecovered))
    }

    /// The hypothesis named or read from a file; `induction` picks its heads on the model.
    func resolve(_ model: HookedTransformer) throws -> ScrubHypothesis {
        switch hypothesis {
        case "full": return .full
        case "none": return .none
        case "induction":
            let c = model.config
            guard c.nLayers >= 2 else { throw ValidationError("the induction hypothesis needs two layers or more; the model has \(c.nLayers)") }
            let test = try model.inductionTest(length: min(50, (c.nCtx - 1) / 2), seed: seed)
            var best = (layer: 1, head: 0, score: -Float.infinity)
            for l in 1..<c.nLayers { for h in 0..<c.nHeads where test.scores.scalars[l * c.nHeads + h] > best.score { best = (l, h, test.scores.scalars[l * c.nHeads + h]) } }
            guard let scores = try model.detectHeads(tokens: test.tokens, patterns: [.previousToken])[.previousToken] else { throw ValidationError("no previous-token scores") }
            var prev = (layer: 0, head: 0, score: -Float.infinity)
            for l in 0..<best.layer { for h in 0..<c.nHeads where scores.scalars[l * c.nHeads + h] > prev.score { prev = (l, h, scores.scalars[l * c.nHeads + h]) } }
            FileHandle.standardError.write(Data(String(format: "induction: L%dH%d (induction score %.2f), previous-token head L%dH%d (score %.2f)\n",
                                                       best.layer, best.head, best.score, prev.layer, prev.head, prev.score).utf8))
            return .induction(previousToken: (prev.layer, prev.head), induction: (best.layer, best.head))
        default:
            guard FileManager.default.fileExists(atPath: hypothesis) else {
                throw ValidationError("--hypothesis must be full, none, induction or a JSON file; '\(hypothesis)' is none of these")
            }
            do { return try ScrubHypothesis.decode(try Data(contentsOf: URL(fileURLWithPath: hypothesis))) } catch {
                throw ValidationError("--hypothesis \(hypothesis): \(error)")
            }
        }
    }
}
