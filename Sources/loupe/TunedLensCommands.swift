// `loupe train tuned-lens` and `loupe lens-eval`: train a tuned lens on a corpus, and compare it with
// the logit lens (mean KL to the final distribution per layer) on held-out text.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor
import LoupeTraining

/// Token streams of text files (their first `chars` characters each).
func corpusTokens(_ files: [String], chars: Int?, loaded: LoadedModel) throws -> [[Int]] {
    let tokenizer = try loaded.requireTokenizer()
    return try files.map { tokenizer.encode(try readText($0, chars: chars, option: "--corpus")) }
}

struct TrainTunedLens: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tuned-lens",
        abstract: "Train a tuned lens (Belrose et al. 2023): one affine translator per layer, minimizing KL(final ‖ lens).",
        discussion: """
            Each step runs the model on --batch random windows of --context tokens from the corpus, harvests \
            every layer's resid_pre and the final log-probabilities, and takes one AdamW step on all translators \
            (h ↦ h + h·A + b, starting at the identity = the logit lens). Writes --out (safetensors, \
            layer_translators.{l}.weight/bias as the tuned-lens package); checkpoints go to OUT.checkpoint \
            every --checkpoint-every steps and on Ctrl-C; continue with --resume. Use the lens with \
            `loupe lens --tuned OUT` and compare with `loupe lens-eval`.

            Example:
              loupe train tuned-lens --model smollm2-135m --corpus emma.txt mansfield-park.txt --out smollm2-tuned-lens.safetensors
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files to train on.")
    var corpus: [String]
    @Option(name: .long, parsing: .unconditional, help: "Read only the first N characters of each file (default: all).", transform: Count.nonNegative)
    var chars: Int?
    @Option(name: .long, help: "Output lens file (.safetensors).")
    var out: String
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var steps: Int = 100
    @Option(name: .long, parsing: .unconditional, help: "Windows per step.", transform: Count.positive)
    var batch: Int = 2
    @Option(name: .long, parsing: .unconditional, help: "Tokens per window.", transform: Count.positive)
    var context: Int = 128
    @Option(name: .long, help: "AdamW learning rate (warmup, cosine decay to a tenth).")
    var lr: Float = 1e-3
    @Option(name: .long, help: "Weight decay on the translators' matrices (towards the identity).")
    var weightDecay: Float = 1e-3
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var checkpointEvery: Int = 5
    @Flag(name: .long, help: "Continue from OUT.checkpoint.")
    var resume = false
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if corpus.isEmpty { throw ValidationError("--corpus: give at least one text file") }
        if steps <= 0 || batch <= 0 || context <= 1 { throw ValidationError("--steps and --batch must be positive and --context > 1") }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let t0 = Date()
        let tokens = try corpusTokens(corpus, chars: chars, loaded: loaded)
        FileHandle.standardError.write(Data(String(format: "corpus: %d files, %d tokens (tokenized in %.1f s)\n",
                                                   tokens.count, tokens.reduce(0) { $0 + $1.count }, Date().timeIntervalSince(t0)).utf8))
        let outURL = URL(fileURLWithPath: out)
        let checkpoint = URL(fileURLWithPath: out + ".checkpoint")
        let trainer: TunedLensTrainer
        if resume {
            trainer = try TunedLensTrainer.resume(from: checkpoint, model: loaded.model, corpus: tokens, steps: steps)
            FileHandle.standardError.write(Data("resuming at step \(trainer.step) of \(trainer.settings.steps)\n".utf8))
        } else {
            let settings = TunedLensSettings(
                steps: steps, batch: batch, context: context, seed: seed,
                optimizer: AdamWConfig(learningRate: lr, totalSteps: steps, warmupSteps: min(10, steps / 10), weightDecay: weightDecay,
                                       beta1: 0.9, beta2: 0.99, clipNorm: nil),
                checkpointEvery: checkpointEvery)
            trainer = try TunedLensTrainer(model: loaded.model, modelName: modelOptions.model, corpus: tokens, settings: settings)
        }
        signal(SIGINT) { _ in trainingInterrupted = true }
        let bar = TrainingProgressPrinter(label: "tuned lens", total: trainer.settings.steps)
        let start = Date(), startStep = trainer.step
        let tokensPerStep = trainer.settings.batch * trainer.settings.context
        let finished = try trainer.train(checkpoint: checkpoint, progress: bar.update, shouldStop: { trainingInterrupted })
        bar.finish()
        signal(SIGINT, SIG_DFL)
        guard finished else { throw ValidationError("interrupted at step \(trainer.step); checkpoint in \(checkpoint.path); continue with --resume") }
        let seconds = Date().timeIntervalSince(start)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try trainer.lens.save(to: outURL, extra: ["settings": String(decoding: try encoder.encode(trainer.settings), as: UTF8.self),
                                                  "corpus": corpus.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ",")])
        let first = trainer.history.prefix(5).map(\.loss), last = trainer.history.suffix(5).map(\.loss)
        struct Output: Encodable { let out: String; let steps: Int; let tokens: Int; let seconds: Double; let firstLoss: Float; let lastLoss: Float }
        let o = Output(out: out, steps: trainer.step, tokens: trainer.step * tokensPerStep, seconds: seconds,
                       firstLoss: first.reduce(0, +) / Float(max(first.count, 1)), lastLoss: last.reduce(0, +) / Float(max(last.count, 1)))
        if json { try printJSON(o); return }
        print(String(format: "mean KL over layers: %.3f (first 5 steps) → %.3f (last 5), %d steps, %d tokens; this run %d steps in %.0f s (%.1f tokens/s)",
                     o.firstLoss, o.lastLoss, o.steps, o.tokens, trainer.step - startStep, seconds,
                     Double((trainer.step - startStep) * tokensPerStep) / max(seconds, 1e-9)))
        print("wrote \(out)")
    }
}

struct LensEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lens-eval",
        abstract: "Mean KL(final ‖ lens) per layer on a text: the logit lens, and a tuned lens with --tuned.",
        discussion: """
            Consecutive windows of --context tokens from the start of each file, up to --tokens tokens in all.

            Example:
              loupe lens-eval --model smollm2-135m --corpus northanger-abbey.txt --tuned smollm2-austen-tuned-lens.safetensors --tokens 2048
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files (held out from the lens's training).")
    var corpus: [String]
    @Option(name: .long, help: "A tuned lens (from `loupe train tuned-lens`).")
    var tuned: String?
    @Option(name: .long, parsing: .unconditional, help: "Tokens to evaluate on.", transform: Count.positive)
    var tokens: Int = 2048
    @Option(name: .long, parsing: .unconditional, help: "Tokens per window.", transform: Count.positive)
    var context: Int = 128
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        guard tokens > 0, context > 0 else { throw ValidationError("--tokens and --context must be positive") }
        let loaded = try modelOptions.load()
        let lens = try tuned.map { try TunedLens.load(path: $0) }
        // Enough characters for the tokens asked (≈ 4 characters a token; 8 for margin).
        let streams = try corpusTokens(corpus, chars: tokens * 8 + 1000, loaded: loaded)
        var windows: [[Int]] = [], left = tokens
        for s in streams {
            var i = 0
            while left > 0 && i < s.count {
                let n = min(context, left, s.count - i)
                windows.append(Array(s[i..<(i + n)]))
                i += n; left -= n
            }
        }
        let bar = ProgressBar(total: windows.count, label: "lens-eval")
        let start = Date()
        let result = try loaded.model.lensDivergence(windows: windows, tuned: lens) { done, _ in bar.update(completed: done) }
        bar.finish()
        if json { try printJSON(result); return }
        print(String(format: "mean KL(final ‖ lens) in nats over %d tokens (%d windows of ≤ %d), %.0f s", result.tokens, windows.count, context, Date().timeIntervalSince(start)))
        print(result.tunedLens == nil ? "| layer | logit lens |\n|---|---|" : "| layer | logit lens | tuned lens |\n|---|---|---|")
        for (l, label) in result.labels.enumerated() {
            var line = "| \(label) | " + String(format: "%.3f", result.logitLens[l])
            if let t = result.tunedLens { line += " | " + String(format: "%.3f", t[l]) }
            print(line + " |")
        }
        if let t = result.tunedLens {
            let better = zip(t, result.logitLens).filter { $0 < $1 }.count
            print("tuned lens lower at \(better) of \(t.count) layers; means \(String(format: "%.3f", result.logitLens.reduce(0, +) / Float(t.count))) → \(String(format: "%.3f", t.reduce(0, +) / Float(t.count)))")
        }
    }
}
