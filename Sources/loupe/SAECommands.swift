import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeRender
import LoupeTensor
import LoupeTraining

/// Tokens of the corpus files, one after another (each file encoded on its own).
func corpusTokens(_ files: [String], loaded: LoadedModel, maxTokens: Int?) throws -> [Int] {
    let tokenizer = try loaded.requireTokenizer()
    var tokens: [Int] = []
    for file in files {
        tokens += tokenizer.encode(try readText(file, chars: nil, option: "--corpus"), allowSpecial: false)
        if let maxTokens, tokens.count >= maxTokens { return Array(tokens.prefix(maxTokens)) }
    }
    return tokens
}

struct TrainSAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae",
        abstract: "Train a sparse autoencoder on one hook point of a model over text files.",
        discussion: """
            Runs the model on windows of the corpus (only the blocks up to the hook), shuffles the hook's \
            activations in a buffer and trains a TopK (default) or ReLU+L1 SAE with AdamW; decoder rows are kept \
            at unit norm, b_dec starts at the geometric median of the data, dead features can be resampled. The \
            last 5% of the tokens are held out: explained variance, L0 and the cross-entropy loss recovered with \
            the SAE spliced in are measured there. --out receives the SAE in SAELens's layout (cfg.json + \
            sae_weights.safetensors) and the training state; --resume continues a run from it.

            Example:
              loupe train sae --model smollm2-135m --hook blocks.15.hook_resid_post --corpus emma.txt --out smollm2-l15-sae
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Hook point, e.g. blocks.15.hook_resid_post.")
    var hook: String
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files.")
    var corpus: [String]
    @Option(name: .long, help: "topk or standard (ReLU with an L1 penalty).")
    var architecture: SAEArchitecture = .topk
    @Option(name: .long, parsing: .unconditional, help: "Number of features.", transform: Count.positive)
    var dSae: Int = 4096
    @Option(name: .long, parsing: .unconditional, help: "Active features per token (topk).", transform: Count.positive)
    var k: Int = 32
    @Option(name: .long, help: "L1 coefficient (standard).")
    var l1: Float = 5
    @Option(name: .long, parsing: .unconditional, help: "Training activations (steps = tokens / batch).", transform: Count.positive)
    var tokens: Int = 1_000_000
    @Option(name: .long, parsing: .unconditional, help: "Activations per step.", transform: Count.positive)
    var batch: Int = 1024
    @Option(name: .long) var lr: Float = 4e-4
    @Option(name: .long, parsing: .unconditional, help: "Tokens per window.", transform: Count.positive)
    var context: Int = 128
    @Option(name: .long, parsing: .unconditional, help: "Rows in the shuffle buffer (default: 16 × batch).", transform: Count.positive)
    var buffer: Int?
    @Option(name: .long, parsing: .unconditional, help: "A feature silent for this many steps is dead.", transform: Count.positive)
    var deadWindow: Int = 200
    @Option(name: .long, parsing: .unconditional, help: "Resample dead features every this many steps (0: never).", transform: Count.nonNegative)
    var resampleEvery: Int = 0
    @Option(name: .long, parsing: .unconditional, help: "Use at most this many corpus tokens.", transform: Count.nonNegative)
    var maxCorpusTokens: Int?
    @Option(name: .long, parsing: .unconditional, help: "Harvest at most this many activations once, keep them in memory and cycle through them.", transform: Count.nonNegative)
    var storeActivations: Int?
    @Option(name: .long, parsing: .unconditional, help: "Held-out windows for the cross-entropy evaluation.", transform: Count.positive)
    var evalWindows: Int = 16
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Folder for the SAE and its checkpoints.")
    var out: String
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var checkpointEvery: Int = 200
    @Flag(name: .long, help: "Continue the run checkpointed in --out.")
    var resume = false
    @Flag(name: .long, help: "Draw progress bars even when standard error is not a terminal (for logs).")
    var progress = false
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if corpus.isEmpty { throw ValidationError("--corpus: give at least one text file") }
        if architecture == .topk && !(1...dSae).contains(k) { throw ValidationError("--k must be in 1…\(dSae) (--d-sae), found \(k)") }
        if batch < 1 || tokens < batch { throw ValidationError("--batch must be ≥ 1 and --tokens ≥ --batch, found \(batch) and \(tokens)") }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let hookName = try HookName(parsing: hook)
        let ids = try corpusTokens(corpus, loaded: loaded, maxTokens: maxCorpusTokens)
        let arch = architecture
        let steps = tokens / batch
        var settings = SAETrainingSettings(batchSize: batch, steps: steps, learningRate: lr, warmupSteps: min(100, steps / 20),
                                           l1Coefficient: l1, deadWindow: deadWindow, resampleEvery: resampleEvery, seed: seed,
                                           checkpointEvery: checkpointEvery)
        settings.resampleStopFraction = 0.75
        var options = SAERunOptions(architecture: arch, dSAE: dSae, k: arch == .topk ? k : nil, contextSize: context,
                                    settings: settings, bufferRows: buffer ?? 16 * batch, modelName: modelOptions.model)
        options.evalWindows = evalWindows
        options.storedRows = storeActivations
        if !json {
            FileHandle.standardError.write(Data("corpus: \(ids.count) tokens; \(steps) steps of \(batch) activations on \(hook)\n".utf8))
        }
        signal(SIGINT) { _ in trainingInterrupted = true }
        var harvestBar: ProgressBar?
        var bar: ProgressBar?   // made at the first step, so its rate leaves out the harvest
        var smoothed: Float?
        let (_, result) = try loaded.model.trainSAE(
            hook: hookName, tokens: ids, options: options, checkpointDirectory: URL(fileURLWithPath: out), resume: resume,
            shouldStop: { trainingInterrupted },
            harvestProgress: { done, total in
                if json { return }
                if harvestBar == nil { harvestBar = ProgressBar(total: total, label: "harvest", force: progress) }
                harvestBar?.update(completed: done)
                if done == total { harvestBar?.finish() }
            }) { p in
                let mse = p.record.mse
                smoothed = smoothed.map { 0.95 * $0 + 0.05 * mse } ?? mse
                if bar == nil && !json { bar = ProgressBar(total: steps, label: "train sae", force: progress) }
                bar?.update(completed: p.step, extra: String(format: "mse %.4g  L0 %.1f  dead %.1f%%", smoothed ?? 0, p.record.l0, 100 * p.deadFraction))
                if p.step == p.steps { bar?.finish() }
            }
        bar?.finish()
        signal(SIGINT, SIG_DFL)
        if trainingInterrupted {
            throw ValidationError("interrupted; checkpoint in \(out); continue with --resume")
        }
        if json { try printJSON(result); return }
        print("SAE            \(result.architecture) d_in \(result.dIn) → d_sae \(result.dSAE)\(result.k.map { ", k \($0)" } ?? "") on \(result.hook)")
        print(String(format: "training       %d steps, %d activations (%.2f epochs of %d corpus tokens) in %.0f s", result.steps,
                     result.trainingTokens, result.epochs, result.corpusTokens, result.seconds))
        print(String(format: "held out       L0 %.1f, explained variance %.3f, MSE %.4g (%d activations)", result.heldOut.l0,
                     result.heldOut.explainedVariance, result.heldOut.mse, result.heldOut.rows))
        print(String(format: "dead           %.1f%% (no activation in %d steps); %d resampled", 100 * result.deadFraction, deadWindow, result.resampled))
        if let l = result.losses {
            print(String(format: "CE loss        clean %.4f, with SAE %.4f, zero-ablated %.4f → %.1f%% recovered (%d tokens)",
                         l.clean, l.withSAE, l.zeroAblated, 100 * l.recovered, l.tokens))
        }
        print("wrote          \(out)/cfg.json, \(out)/sae_weights.safetensors")
    }
}

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read an SAE's features: max-activating examples, logit effects, and the model with the SAE spliced in.",
        discussion: """
            --sae is a folder in SAELens's layout (Loupe's or SAELens's). With --corpus, each shown feature's \
            strongest activations over the text (--feature N, repeatable; otherwise the most frequent features). \
            Each shown feature's logit effect is W_dec[f] through the final norm's weight and W_U. With --prompt, \
            the next-token predictions clean, with the SAE's reconstruction spliced in at its hook, and with \
            --ablate N (x − f_N(x)·W_dec[N]) or --steer N --scale S (x + S·W_dec[N]); --generate T continues greedily.

            Example:
              loupe features --model smollm2-135m --sae smollm2-l15-sae --corpus emma.txt --tokens 20000 --feature 868 --top 3
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "SAE folder (cfg.json + sae_weights.safetensors).")
    var sae: String
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files to search for examples.")
    var corpus: [String] = []
    @Option(name: .long, help: "A feature to show (repeatable).")
    var feature: [Int] = []
    @Option(name: .long, parsing: .unconditional, help: "Features to show when none is given (the most frequent).", transform: Count.nonNegative)
    var count: Int = 5
    @Option(name: .long, parsing: .unconditional, help: "Examples per feature.", transform: Count.nonNegative)
    var top: Int = 8
    @Option(name: .long, parsing: .unconditional, help: "Tokens per window when reading the corpus.", transform: Count.positive)
    var context: Int = 128
    @Option(name: [.customLong("tokens"), .customLong("max-corpus-tokens")], parsing: .unconditional, help: "Read at most this many corpus tokens.", transform: Count.nonNegative)
    var maxCorpusTokens: Int = 50_000
    @Option(name: .long, help: "A prompt to run with the SAE spliced in.")
    var prompt: String?
    @Option(name: .long, parsing: .unconditional, help: "Feature to remove on --prompt.", transform: Count.nonNegative)
    var ablate: Int?
    @Option(name: .long, parsing: .unconditional, help: "Feature to add on --prompt.", transform: Count.nonNegative)
    var steer: Int?
    @Option(name: .long, help: "Steering scale.")
    var scale: Float = 10
    @Option(name: .long, parsing: .unconditional, help: "Greedy tokens to generate on --prompt.", transform: Count.nonNegative)
    var generate: Int = 0
    @Option(name: .long, help: "A .safetensors file of activations (e.g. from `loupe cache`): encode its tensor named as the SAE's hook (or its only tensor) and write feature_acts and sae_out to --encode-out.")
    var encode: String?
    @Option(name: .long, help: "Where --encode writes feature_acts [rows, d_sae] and sae_out [rows, d_in].")
    var encodeOut: String?
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if (encode == nil) != (encodeOut == nil) { throw ValidationError("give --encode FILE and --encode-out FILE together") }
        if ablate != nil && steer != nil { throw ValidationError("give --ablate or --steer, not both") }
        if (ablate != nil || steer != nil) && prompt == nil { throw ValidationError("--ablate and --steer need --prompt") }
    }

    struct ExampleOut: Encodable { let activation: Float; let position: Int; let text: String }
    struct FeatureOut: Encodable {
        let feature: Int
        let fireRate: Double?
        let examples: [ExampleOut]
        let logitEffect: [String: Float]?
    }
    struct PredictionOut: Encodable { let mode: String; let top: [String: Float]; let continuation: String? }
    struct Output: Encodable { let hook: String; let dSAE: Int; let features: [FeatureOut]; let predictions: [PredictionOut] }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let sae = try SAELensFormat.read(from: URL(fileURLWithPath: self.sae))
        let hook = try HookName(parsing: sae.config.hookName)
        try model.checkHook(hook)
        let tokenizer = try loaded.requireTokenizer()
        if let encode, let encodeOut {
            let file = try SafetensorsFile(path: encode)
            let name = file.entries[sae.config.hookName] != nil ? sae.config.hookName : (file.names.count == 1 ? file.names[0] : nil)
            guard let name else {
                throw ValidationError("--encode: \(encode) has no tensor named \(sae.config.hookName) (found \(file.names.joined(separator: ", ")))")
            }
            let x = try file.tensor(name)
            let acts = try sae.encode(x)
            try writeSafetensors([("feature_acts", acts), ("sae_out", try sae.decode(acts))], to: URL(fileURLWithPath: encodeOut))
            if !json { print("encoded \(acts.shape[0]) activations of \(name) → \(encodeOut)") }
        }
        for f in feature + [ablate, steer].compactMap({ $0 }) where !(0..<sae.config.dSAE).contains(f) {
            throw ValidationError("feature \(f) is out of range: the SAE has \(sae.config.dSAE) features (0…\(sae.config.dSAE - 1))")
        }

        var picked = feature
        var examples: FeatureExamples?
        if !corpus.isEmpty {
            let ids = try corpusTokens(corpus, loaded: loaded, maxTokens: maxCorpusTokens)
            let bar = json ? nil : ProgressBar(total: max(ids.count / context, 1), label: "features")
            examples = try model.saeFeatureExamples(sae, tokens: ids, contextSize: min(context, model.config.nCtx),
                                                    features: feature.isEmpty ? nil : feature, k: top) { done, _ in bar?.update(completed: done) }
            bar?.finish()
            if picked.isEmpty, let e = examples {
                picked = e.mostFrequent(count)
            }
        }
        let residual = sae.config.dIn == model.config.dModel
        var featureOut: [FeatureOut] = []
        for f in picked {
            let list = examples?.examples[f] ?? []
            let ex = list.map { e in
                ExampleOut(activation: e.activation, position: e.position,
                           text: e.context.enumerated().map { i, t in i == e.focus ? "[[\(loaded.tokenText(t))]]" : loaded.tokenText(t) }.joined())
            }
            var effect: [String: Float]?
            if residual {
                let top = try model.saeTopLogitEffect(sae, feature: f, k: 8)
                effect = Dictionary(top.map { (loaded.tokenText($0.token), $0.effect) }, uniquingKeysWith: { a, _ in a })
            }
            let rate = examples?.fireRate(f)
            featureOut.append(FeatureOut(feature: f, fireRate: rate, examples: ex, logitEffect: effect))
        }

        var predictions: [PredictionOut] = []
        if let prompt {
            let ids = tokenizer.encode(prompt, allowSpecial: false)
            guard !ids.isEmpty else { throw ValidationError("--prompt is empty: nothing to run") }
            var modes: [(String, Hooks)] = [("clean", [:]), ("sae", [hook: try sae.hook(.reconstruct)])]
            if let ablate { modes.append(("ablate \(ablate)", [hook: try sae.hook(.ablate(feature: ablate))])) }
            if let steer { modes.append(("steer \(steer) × \(scale)", [hook: try sae.hook(.steer(feature: steer, scale: scale))])) }
            for (name, hooks) in modes {
                let logits = try model.run(.tokens([ids]), hooks: hooks)
                let top = try logits.topPredictions(k: 5)
                var continuation: String?
                if generate > 0 {
                    continuation = try tokenizer.decode(model.generateGreedy(prompt: ids, maxTokens: generate, hooks: hooks))
                }
                predictions.append(PredictionOut(mode: name, top: Dictionary(top.map { (loaded.tokenText($0.id), $0.probability) }, uniquingKeysWith: { a, _ in a }),
                                                 continuation: continuation))
            }
        }

        if json {
            try printJSON(Output(hook: sae.config.hookName, dSAE: sae.config.dSAE, features: featureOut, predictions: predictions))
            return
        }
        print("SAE \(sae.config.architecture.rawValue) on \(sae.config.hookName): d_in \(sae.config.dIn), d_sae \(sae.config.dSAE)\(sae.config.k.map { ", k \($0)" } ?? "")")
        for f in featureOut {
            print("")
            print("feature \(f.feature)" + (f.fireRate.map { String(format: "  (fires on %.2f%% of tokens)", 100 * $0) } ?? ""))
            if let e = f.logitEffect {
                print("  logit effect: " + e.sorted { $0.value > $1.value }.map { String(format: "%@ %+.2f", shown($0.key), $0.value) }.joined(separator: ", "))
            }
            for x in f.examples { print(String(format: "  %8.3f  ", x.activation) + x.text.replacingOccurrences(of: "\n", with: "⏎")) }
        }
        for p in predictions {
            print("")
            print("\(p.mode): " + p.top.sorted { $0.value > $1.value }.map { String(format: "%@ %.3f", shown($0.key), $0.value) }.joined(separator: ", "))
            if let c = p.continuation { print("  → " + shown(c)) }
        }
    }
}
