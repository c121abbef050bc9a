// `loupe train max|add|fibonacci|induction`: train a toy model from scratch, report its accuracy and time,
// and print (and draw) the analysis the interpretability notes make of it.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor
import LoupeTraining

/// Options every toy task shares.
struct ToyTrainingOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Training steps (default: the task's).", transform: Count.nonNegative)
    var steps: Int?

    @Option(name: .long, help: "Random seed (initialization, data, dropout).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Learning rate (default: the task's).")
    var lr: Float?

    @Option(name: .long, help: "Folder for checkpoints and the trained model (TransformerLens layout; loads with --model).")
    var out: String?

    @Option(name: .long, parsing: .unconditional, help: "Save a checkpoint every N steps (with --out).", transform: Count.nonNegative)
    var checkpointEvery: Int = 500

    @Flag(name: .long, help: "Continue the run checkpointed in --out.")
    var resume = false

    @Option(name: .long, help: "Folder for the analysis heatmaps (SVG and PNG).")
    var figures: String?

    @Option(name: .long, help: "Write an HTML report: the training curve and the analysis heatmaps.")
    var html: String?

    @Flag(name: .long, help: "Print one JSON object (with accuracy and seconds) as the last line.")
    var json = false

    @Option(name: .long, parsing: .unconditional, help: "BLAS threads.", transform: Count.positive)
    var threads: Int = 2

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if resume && out == nil { throw ValidationError("--resume needs --out, the folder holding the checkpoint") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive, found \(steps)") }
    }
}

/// Set by SIGINT: the trainer checkpoints and stops at the end of its step.
nonisolated(unsafe) var trainingInterrupted = false

/// Trains `task` as the options say; returns the trainer, the trained model and the seconds it took.
func trainToy(_ task: ToyTask, _ o: ToyTrainingOptions) throws -> (model: HookedTransformer, seconds: Double, trainer: Trainer) {
    BLAS.setThreads(o.threads)
    let outURL = o.out.map { URL(fileURLWithPath: $0) }
    let trainer: Trainer
    if o.resume, let outURL {
        trainer = try Trainer.resume(from: outURL, steps: o.steps)
        FileHandle.standardError.write(Data("resuming \(task.name) at step \(trainer.step) of \(trainer.settings.steps)\n".utf8))
    } else {
        var settings = task.defaultSettings(seed: o.seed)
        if let steps = o.steps { settings.steps = steps; settings.optimizer.totalSteps = steps }
        if let lr = o.lr { settings.optimizer.learningRate = lr }
        settings.checkpointEvery = o.out == nil ? 0 : o.checkpointEvery
        trainer = try Trainer(config: task.config, settings: settings)
    }
    signal(SIGINT) { _ in trainingInterrupted = true }
    let bar = TrainingProgressPrinter(label: "train \(task.name)", total: trainer.settings.steps)
    let start = Date()
    let finished = try trainer.train(task, checkpointDirectory: outURL, progress: bar.update, shouldStop: { trainingInterrupted })
    bar.finish()
    signal(SIGINT, SIG_DFL)
    if !finished {
        throw ValidationError("interrupted at step \(trainer.step); checkpoint saved in \(o.out ?? "nowhere (no --out)"); continue with --resume")
    }
    return (try trainer.model(), Date().timeIntervalSince(start), trainer)
}

/// The progress bar of a training run: step, smoothed loss and tokens/s.
final class TrainingProgressPrinter {
    let bar: ProgressBar?
    let label: String

    init(label: String, total: Int) {
        self.label = label
        bar = ProgressBar(total: total, label: label)
    }

    func update(_ p: TrainingProgress) {
        let extra = String(format: "loss %.4f  %.0f tok/s", p.smoothedLoss, p.tokensPerSecond)
        if let bar, bar.drawsInPlace {
            bar.update(completed: p.step, extra: extra)
        } else if p.step % max(p.totalSteps / 10, 1) == 0 {
            // Not a terminal: a line every tenth of the run, so logs show the loss going down.
            FileHandle.standardError.write(Data("\(label) step \(p.step)/\(p.totalSteps)  \(extra)\n".utf8))
        }
    }

    func finish() { bar?.finish() }
}

/// The JSON line every toy command ends with under --json.
struct ToyResult: Encodable {
    let task: String
    let accuracy: Float
    let seconds: Double
    let steps: Int
    let finalLoss: Float
    var extra: [String: Float] = [:]
}

func printToyResult(_ r: ToyResult, json: Bool) throws {
    if json {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        print(String(decoding: try enc.encode(r), as: UTF8.self))
    } else {
        print(String(format: "%@: accuracy %.2f%% after %d steps in %.1f s (final loss %.4f)", r.task, r.accuracy * 100, r.steps,
                     r.seconds, r.finalLoss))
    }
}

/// Writes the analysis heatmaps (SVG, under --figures) and the HTML report (--html) with the loss curve.
func writeToyFigures(_ maps: [(String, Heatmap)], trainer: Trainer, task: String, _ o: ToyTrainingOptions) throws {
    for (name, map) in maps { try writeHeatmap(map, o, name) }
    guard let path = o.html else { return }
    var report = Report(title: "loupe train \(task)", metadata: [("steps", String(trainer.step)), ("seed", String(trainer.settings.seed))])
    let points = trainer.history.map { (step: Double($0.step), value: Double($0.loss)) }
    report.add(try TrainingCurves(title: "Training loss", series: [.init(name: "loss", points: points)],
                                  logScale: points.allSatisfy { $0.value > 0 }))
    for (_, map) in maps { report.add(map) }
    try report.write(to: path)
    print("wrote \(path)")
}

func figureURL(_ o: ToyTrainingOptions, _ name: String) throws -> URL? {
    guard let dir = o.figures else { return nil }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return URL(fileURLWithPath: dir).appendingPathComponent(name)
}

func writeHeatmap(_ h: Heatmap, _ o: ToyTrainingOptions, _ name: String) throws {
    guard let url = try figureURL(o, name) else { return }
    try h.write(to: url.path)
    let png = url.deletingPathExtension().appendingPathExtension("png")
    try h.writePNG(to: png.path)
    print("wrote \(url.path) and \(png.lastPathComponent)")
}

struct TrainMax: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "max", abstract: "Max of a list: 1 layer, 1 head, attention-only; QK and OV circuits, copying score.",
        discussion: """
            Example:
              loupe train max --steps 2000 --out max-model
            """)
    @OptionGroup var options: ToyTrainingOptions

    func run() throws {
        let task = MaxOfListTask()
        let (model, seconds, trainer) = try trainToy(task, options)
        let analysis = try MaxOfListAnalysis(model: model, task: task)
        if !options.json { print(analysis.report()) }
        try writeToyFigures(analysis.heatmaps(), trainer: trainer, task: task.name, options)
        try printToyResult(ToyResult(task: task.name, accuracy: try task.accuracy(model), seconds: seconds, steps: trainer.step,
                                     finalLoss: trainer.history.last?.loss ?? .nan,
                                     extra: ["copying_score": analysis.copyingScore]), json: options.json)
    }
}

/// Trains an arithmetic task, then prints and draws its neuron analysis (curves over the input at `varying`).
func trainArithmetic(_ task: ToyTask, inputs: Batch, varying: Int, _ options: ToyTrainingOptions,
                     extra: (HookedTransformer) throws -> [String: Float]) throws {
    let (model, seconds, trainer) = try trainToy(task, options)
    let analysis = try ArithmeticAnalysis(model: model, batch: inputs, varying: varying)
    if !options.json { print(analysis.report()) }
    try writeToyFigures(analysis.heatmaps(prefix: task.name), trainer: trainer, task: task.name, options)
    var values = try extra(model)
    values["periodic_neuron_fraction"] = analysis.periodicFraction
    try printToyResult(ToyResult(task: task.name, accuracy: try task.accuracy(model), seconds: seconds, steps: trainer.step,
                                 finalLoss: trainer.history.last?.loss ?? .nan, extra: values), json: options.json)
}

struct TrainAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Addition a + b < 128: 1 layer with an MLP; effective weights and periodic neurons.",
        discussion: """
            Example:
              loupe train add --out add-model
            """)
    @OptionGroup var options: ToyTrainingOptions

    func run() throws {
        let task = AdditionTask()
        try trainArithmetic(task, inputs: task.batch(of: task.pairs), varying: 0, options) {
            ["accuracy_all_pairs": try task.accuracyOnAllPairs($0)]
        }
    }
}

struct TrainFibonacci: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fibonacci", abstract: "Fibonacci sequences (context of 5): 1 layer with an MLP; effective weights and neurons.",
        discussion: """
            Example:
              loupe train fibonacci --out fibonacci-model
            """)
    @OptionGroup var options: ToyTrainingOptions

    func run() throws {
        let task = FibonacciTask()
        try trainArithmetic(task, inputs: task.batch(of: task.starts), varying: 4, options) { _ in [:] }
    }
}

struct TrainInduction: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "induction",
        abstract: "Induction: a 2-layer attention-only model on repeated random segments; head detectors, K-composition, and a 1-layer contrast.",
        discussion: """
            Example:
              loupe train induction --layers 2 --contrast
            """)
    @OptionGroup var options: ToyTrainingOptions

    @Option(name: .long, parsing: .unconditional, help: "Layers (2 forms induction heads; 1 is the contrast that cannot).", transform: Count.positive)
    var layers: Int = 2

    @Flag(name: .long, help: "Also train the 1-layer model the same way and compare.")
    var contrast = false

    func run() throws {
        let task = InductionTask(layers: layers)
        let (model, seconds, trainer) = try trainToy(task, options)
        let analysis = try InductionAnalysis(model: model)
        if !options.json { print(analysis.report()) }
        try writeToyFigures(analysis.heatmaps(), trainer: trainer, task: task.name, options)
        var extra: [String: Float] = ["max_previous_token_score_layer0": analysis.bestPreviousToken.score,
                                      "max_induction_score": analysis.bestInduction.score,
                                      "k_composition_of_pair": analysis.kCompositionOfPair]
        if contrast {
            var o = options
            o.out = nil; o.resume = false
            let one = InductionTask(layers: 1)
            let (m1, s1, _) = try trainToy(one, o)
            let acc1 = try one.accuracy(m1)
            extra["one_layer_accuracy"] = acc1
            extra["one_layer_seconds"] = Float(s1)
            if !options.json {
                print(String(format: "contrast: the 1-layer model trained the same way reaches %.1f%% on repeated tokens (chance %.1f%%)",
                             acc1 * 100, 100.0 / Float(one.vocab)))
            }
        }
        try printToyResult(ToyResult(task: task.name, accuracy: try task.accuracy(model), seconds: seconds, steps: trainer.step,
                                     finalLoss: trainer.history.last?.loss ?? .nan, extra: extra), json: options.json)
    }
}

struct TrainLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Train a small language model (and its BPE tokenizer) on text files.",
        discussion: """
            Trains a byte-level BPE tokenizer on the corpus (or reads one with --tokenizer), then a GPT-2-style \
            model on random windows of the first 90% of each text; the last 10% of each text is held out. \
            --out receives checkpoints and the model (TransformerLens layout, loads with --model); --export \
            writes the model in float16 with its tokenizer, the form Loupe ships.

            Example:
              loupe train lm --corpus austen/*.txt --out austen-lm --vocab-size 4096 --steps 2000
            """)

    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files.")
    var corpus: [String]
    @Option(name: .long, help: "A folder with tokenizer.json to use instead of training one.")
    var tokenizer: String?
    @Option(name: .long, parsing: .unconditional, help: "Vocabulary size of the tokenizer to train.", transform: Count.positive)
    var vocabSize: Int = 4096
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var layers: Int = 2
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var dModel: Int = 192
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var heads: Int = 6
    @Option(name: .long, parsing: .unconditional, help: "MLP width (0 with --attn-only).", transform: Count.nonNegative)
    var dMLP: Int = 768
    @Flag(name: .long, help: "Attention-only blocks.")
    var attnOnly = false
    @Option(name: .long, parsing: .unconditional, help: "Context length (the model's n_ctx).", transform: Count.positive)
    var ctx: Int = 256
    @Option(name: .long, parsing: .unconditional, help: "Training window length (default: --ctx).", transform: Count.positive)
    var window: Int?
    @Option(name: .long, parsing: .unconditional, help: "Sequences per batch.", transform: Count.positive)
    var batch: Int = 16
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var steps: Int = 3000
    @Option(name: .long) var lr: Float = 2e-3
    @Option(name: .long) var dropout: Float = 0
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Folder for checkpoints and the model.")
    var out: String
    @Option(name: .long, help: "Share of training windows in which a passage occurs twice (helps an induction circuit form in short runs).")
    var repeatFraction: Double = 0
    @Option(name: .long, help: "Start from this model folder's weights (same shape and tokenizer) instead of a random initialization.")
    var initFrom: String?
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var checkpointEvery: Int = 250
    @Flag(name: .long, help: "Continue the run checkpointed in --out.")
    var resume = false
    @Option(name: .long, help: "Also write the float16 model and its tokenizer here.")
    var export: String?
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var threads: Int = 2
    @Flag(name: .long, help: "Print one JSON object as the last line.")
    var json = false

    func run() throws {
        BLAS.setThreads(threads)
        let texts = try corpus.map { try readText($0, chars: nil, option: "--corpus") }
        let outURL = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        // The tokenizer: given, already in --out (resuming), or trained now and saved in --out.
        let tokenizerDir: URL
        if let tokenizer {
            tokenizerDir = URL(fileURLWithPath: tokenizer)
        } else if resume || FileManager.default.fileExists(atPath: outURL.appendingPathComponent("tokenizer.json").path) {
            tokenizerDir = outURL
        } else {
            let t0 = Date()
            // Trained on the first 90% of each text (characters): the held-out tails stay unseen.
            let trainingParts = texts.map { String($0.prefix(Int(Double($0.count) * 0.9))) }
            let trained = try BPETrainer(vocabSize: vocabSize).train(texts: trainingParts)
            _ = try trained.write(to: outURL)
            FileHandle.standardError.write(Data(String(format: "tokenizer: %d tokens in %.1f s\n", trained.vocabSize, Date().timeIntervalSince(t0)).utf8))
            tokenizerDir = outURL
        }
        guard let bpe = try ModelLoader.loadTokenizer(in: tokenizerDir, gpt2Fallback: false) else {
            throw ValidationError("no tokenizer.json in \(tokenizerDir.path)")
        }
        if tokenizerDir != outURL {
            try? FileManager.default.copyItem(at: tokenizerDir.appendingPathComponent("tokenizer.json"), to: outURL.appendingPathComponent("tokenizer.json"))
        }
        let eos = bpe.id(for: "<|endoftext|>")
        if let window, window > ctx || window < 2 { throw ValidationError("--window must be between 2 and --ctx (\(ctx)), found \(window)") }
        var task = try LanguageModelTask(texts: texts, tokenizer: bpe, eos: eos, context: window ?? ctx, batchSize: batch)
        task.repeatFraction = repeatFraction
        FileHandle.standardError.write(Data("corpus: \(task.train.count) training tokens, \(task.heldOut.count) held out\n".utf8))

        let trainer: Trainer
        if resume {
            trainer = try Trainer.resume(from: outURL, steps: steps)
        } else {
            guard dModel % heads == 0 else { throw ValidationError("--d-model (\(dModel)) must be a multiple of --heads (\(heads))") }
            let config = ModelConfig(architecture: "loupe-lm", nLayers: layers, dModel: dModel, nHeads: heads, dHead: dModel / heads,
                                     dMLP: attnOnly ? 0 : dMLP, dVocab: bpe.vocabSize, nCtx: ctx, normalization: .layerNorm,
                                     activation: .geluNew, eosTokenID: eos, attnOnly: attnOnly)
            let settings = TrainingSettings(steps: steps, seed: seed,
                                            optimizer: AdamWConfig(learningRate: lr, totalSteps: steps, warmupSteps: min(200, steps / 10),
                                                                   weightDecay: 0.1),
                                            dropout: dropout, checkpointEvery: checkpointEvery)
            var initial: [String: Tensor]? = nil
            if let initFrom {
                let start = try ModelLoader.load(path: initFrom).model
                guard start.config.dVocab == config.dVocab, start.config.nLayers == config.nLayers, start.config.dModel == config.dModel else {
                    throw ValidationError("--init-from \(initFrom): its shape differs from the model asked for")
                }
                initial = Dictionary(uniqueKeysWithValues: start.weights.namedTensors.map { ($0.name, $0.tensor) })
            }
            trainer = try Trainer(config: config, settings: settings, parameters: initial)
        }
        let seconds = try trainInterruptibly(trainer, task, out: outURL, label: "train lm")
        let model = try trainer.model()
        let loss = try task.heldOutLoss(model)
        let induction = try model.inductionTest(length: min(50, (ctx - 1) / 2), seed: 0)
        if let export {
            let half = try exportFloat16(model, to: export, tokenizerFrom: outURL)
            let halfLoss = try task.heldOutLoss(half)
            FileHandle.standardError.write(Data(String(format: "exported float16 to %@ (held-out loss %.4f)\n", export, halfLoss).utf8))
        }
        struct Output: Encodable {
            let heldOutLoss: Float, trainLoss: Float, seconds: Double, steps: Int, tokens: Int, parameters: Int
            let inductionFirstHalfLoss: Float, inductionSecondHalfLoss: Float
        }
        let params = trainer.parameters.values.reduce(0) { $0 + $1.count }
        let recent = trainer.history.suffix(100).map(\.loss)
        let o = Output(heldOutLoss: loss, trainLoss: recent.reduce(0, +) / Float(max(recent.count, 1)), seconds: seconds,
                       steps: trainer.step, tokens: trainer.step * batch * (window ?? ctx), parameters: params,
                       inductionFirstHalfLoss: induction.firstHalfLoss, inductionSecondHalfLoss: induction.secondHalfLoss)
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(o), as: UTF8.self))
        } else {
            print(String(format: "held-out loss %.4f nats/token (train %.4f), %d parameters, %d steps in %.0f s", loss, o.trainLoss, params, trainer.step, seconds))
            print(String(format: "induction test: loss %.3f on random tokens, %.3f on their repeat", induction.firstHalfLoss, induction.secondHalfLoss))
        }
    }
}

/// Trains with a progress bar until done, or until Ctrl-C (then the checkpoint in `out` is current and the error
/// says how to resume). Returns the seconds spent.
func trainInterruptibly(_ trainer: Trainer, _ task: BatchSource, out: URL, label: String) throws -> Double {
    signal(SIGINT) { _ in trainingInterrupted = true }
    let bar = TrainingProgressPrinter(label: label, total: trainer.settings.steps)
    let start = Date()
    let finished = try trainer.train(task, checkpointDirectory: out, progress: bar.update, shouldStop: { trainingInterrupted })
    bar.finish()
    signal(SIGINT, SIG_DFL)
    guard finished else { throw ValidationError("interrupted at step \(trainer.step); checkpoint in \(out.path); continue with --resume") }
    return Date().timeIntervalSince(start)
}

/// Writes `model` in float16 with the tokenizer of `out` (the form Loupe ships), and returns the model read back.
func exportFloat16(_ model: HookedTransformer, to export: String, tokenizerFrom out: URL) throws -> HookedTransformer {
    let dir = URL(fileURLWithPath: export)
    try TransformerLensFormat.write(model, to: dir, float16: true)
    try? FileManager.default.removeItem(at: dir.appendingPathComponent("tokenizer.json"))
    try FileManager.default.copyItem(at: out.appendingPathComponent("tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
    return try ModelLoader.load(path: dir.path).model
}
