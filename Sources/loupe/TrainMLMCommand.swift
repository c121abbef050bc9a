// `loupe train mlm`: a small BERT-style masked-language model (and its BPE tokenizer, with a [MASK] token)
// trained on text files.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import LoupeTraining

struct TrainMLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlm",
        abstract: "Train a small masked-language model (a bidirectional encoder) and its tokenizer on text files.",
        discussion: """
            The tokenizer is a byte-level BPE trained on the corpus (or read with --tokenizer) with a [MASK] token \
            added. The model attends in both directions. Its blocks are, with --layout pre-ln (the default), those \
            of `train lm` (LayerNorm before attention and MLP, a final LayerNorm and unembedding), so that it \
            differs from a causal model of the same shape only in its attention mask; with --layout bert, BERT's \
            (LayerNorm after attention and MLP, a masked-LM head), which trains more slowly from scratch. It is \
            trained on random windows of the first 90% of each text with BERT's rule: 15% of \
            positions chosen, 80% of those masked, 10% replaced by a random token, 10% kept; the loss is at \
            the chosen positions. The last 10% of each text is held out: the run ends with the masked-token \
            loss and accuracy there. --out holds checkpoints and the model; --export writes it in float16 with \
            its tokenizer (the form Loupe ships).

            Examples:
              loupe train mlm --corpus austen/*.txt --out mlm-run --steps 3000
              loupe train mlm --corpus austen/*.txt --tokenizer Sources/LoupeModels/Resources/austen-lm --out mlm-run --export my-mlm
            """)

    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files.") var corpus: [String]
    @Option(name: .long, help: "A folder with the BPE tokenizer.json to use instead of training one ([MASK] is added).") var tokenizer: String?
    enum Layout: String, ExpressibleByArgument, CaseIterable { case preLN = "pre-ln", bert }
    @Option(name: .long, help: "Block layout: pre-ln or bert.") var layout: Layout = .preLN
    @Option(name: .long, parsing: .unconditional, help: "Vocabulary size of the tokenizer to train.", transform: Count.positive) var vocabSize: Int = 4096
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var layers: Int = 2
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var dModel: Int = 192
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var heads: Int = 6
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var dMLP: Int = 768
    @Option(name: .long, parsing: .unconditional, help: "Context length (the model's n_ctx and the training window).", transform: Count.positive)
    var ctx: Int = 128
    @Option(name: .long, parsing: .unconditional, help: "Sequences per batch.", transform: Count.positive) var batch: Int = 16
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var steps: Int = 3000
    @Option(name: .long) var lr: Float = 1e-3
    @Option(name: .long, help: "Share of positions chosen for the loss.") var maskRate: Double = 0.15
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: ArgumentHelp("Start from this causal model's weights (a pre-ln model with the same tokenizer, e.g. austen) instead of a random initialization.",
                                            discussion: "The model keeps the start's shape and n_ctx; its attention sees both ways; [MASK] gets a zero embedding and a zero unembedding column. --ctx is then the training window."))
    var initFrom: String?
    @Option(name: .long, help: "Folder for checkpoints and the model.") var out: String
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var checkpointEvery: Int = 250
    @Flag(name: .long, help: "Continue the run checkpointed in --out.") var resume = false
    @Option(name: .long, help: "Also write the float16 model and its tokenizer here.") var export: String?
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var threads: Int = 2
    @Flag(name: .long, help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard maskRate > 0 && maskRate <= 1 else { throw ValidationError("--mask-rate must be in (0, 1], found \(maskRate)") }
        guard dModel % heads == 0 else { throw ValidationError("--d-model (\(dModel)) must be a multiple of --heads (\(heads))") }
        guard ctx >= 2 else { throw ValidationError("--ctx must be at least 2") }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let texts = try corpus.map { try readText($0, chars: nil, option: "--corpus") }
        let outURL = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        let bpe = try prepareTokenizer(texts, outURL: outURL)
        guard let mask = bpe.maskID else { throw ValidationError("the tokenizer in \(out) has no [MASK] token") }
        // Held out: the last 10% of each text, as `train lm` holds it out.
        var train: [Int] = [], held: [Int] = []
        for text in texts {
            let ids = bpe.encode(text, allowSpecial: false)
            let cut = Int(Double(ids.count) * 0.9)
            train += ids[..<cut]
            held += ids[cut...]
        }
        let ordinary = 0..<(bpe.endOfText ?? mask)
        var task = try MaskedLanguageModelTask(train: train, heldOut: held, maskID: mask, randomTokens: ordinary, context: ctx, batchSize: batch)
        task.maskRate = maskRate
        FileHandle.standardError.write(Data("corpus: \(train.count) training tokens, \(held.count) held out; [MASK] is token \(mask)\n".utf8))
        let trainer: Trainer
        if resume {
            trainer = try Trainer.resume(from: outURL, steps: steps)
        } else {
            let bert = layout == .bert
            var config = ModelConfig(architecture: "loupe-mlm", nLayers: layers, dModel: dModel, nHeads: heads, dHead: dModel / heads,
                                     dMLP: dMLP, dVocab: bpe.vocabSize, nCtx: ctx, normalization: .layerNorm,
                                     activation: bert ? .gelu : .geluNew, bidirectional: true, postLayerNorm: bert, maskedLMHead: bert)
            var initial: [String: Tensor]? = nil
            if let initFrom {
                (config, initial) = try startingPoint(initFrom, vocabulary: bpe.vocabSize, mask: mask)
            }
            let settings = TrainingSettings(steps: steps, seed: seed,
                                            optimizer: AdamWConfig(learningRate: lr, totalSteps: steps, warmupSteps: min(200, steps / 10), weightDecay: 0.01),
                                            checkpointEvery: checkpointEvery)
            trainer = try Trainer(config: config, settings: settings, parameters: initial)
        }
        let seconds = try trainInterruptibly(trainer, task, out: outURL, label: "train mlm")
        let model = try trainer.model()
        let result = try task.evaluate(model)
        if let export {
            let half = try task.evaluate(try exportFloat16(model, to: export, tokenizerFrom: outURL))
            FileHandle.standardError.write(Data(String(format: "exported float16 to %@ (held-out masked accuracy %.4f)\n", export, half.accuracy).utf8))
        }
        struct Output: Encodable {
            let heldOutMaskedLoss: Float, heldOutMaskedAccuracy: Float, maskedTokens: Int, trainLoss: Float, seconds: Double, steps: Int, parameters: Int
        }
        let recent = trainer.history.suffix(100).map(\.loss)
        let o = Output(heldOutMaskedLoss: result.loss, heldOutMaskedAccuracy: result.accuracy, maskedTokens: result.masked,
                       trainLoss: recent.reduce(0, +) / Float(max(recent.count, 1)), seconds: seconds, steps: trainer.step,
                       parameters: trainer.parameters.values.reduce(0) { $0 + $1.count })
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(o), as: UTF8.self))
        } else {
            print(String(format: "held-out masked loss %.4f nats, accuracy %.3f over %d masked tokens (train %.4f); %d parameters, %d steps in %.0f s",
                         o.heldOutMaskedLoss, o.heldOutMaskedAccuracy, o.maskedTokens, o.trainLoss, o.parameters, o.steps, seconds))
        }
    }

    /// The configuration and parameters of a run that starts from the causal model in `path`: its shape with
    /// attention both ways, and [MASK] (the last id) added to the embedding and unembedding as zeros.
    func startingPoint(_ path: String, vocabulary: Int, mask: Int) throws -> (ModelConfig, [String: Tensor]) {
        let start = try ModelLoader.load(path: path).model
        var c = start.config
        let problem: String? =
            layout == .bert || c.postLayerNorm ? "--init-from needs the pre-ln layout (a GPT-2-style model); BERT-layout starts are not supported"
            : c.bidirectional ? "it already attends both ways: continue it with --resume instead"
            : c.dVocab != vocabulary - 1 || mask != vocabulary - 1 ? "its vocabulary has \(c.dVocab) tokens; the tokenizer has \(vocabulary - 1) before [MASK]"
            : ctx > c.nCtx ? "its context is \(c.nCtx) tokens, shorter than --ctx \(ctx)"
            : nil
        if let problem { throw ValidationError("--init-from \(path): \(problem)") }
        c.architecture = "loupe-mlm"
        c.bidirectional = true
        c.dVocab = vocabulary
        var p = Dictionary(uniqueKeysWithValues: start.weights.namedTensors.map { ($0.name, $0.tensor) })
        guard let wE = p["embed.W_E"], let wU = p["unembed.W_U"], let bU = p["unembed.b_U"] else {
            throw ValidationError("--init-from \(path): the model has no embedding or unembedding to extend")
        }
        let d = c.dModel, v = vocabulary - 1
        p["embed.W_E"] = Tensor(unchecked: [vocabulary, d], wE.scalars + [Float](repeating: 0, count: d))
        var u = [Float](repeating: 0, count: d * vocabulary)
        for i in 0..<d { for j in 0..<v { u[i * vocabulary + j] = wU.scalars[i * v + j] } }
        p["unembed.W_U"] = Tensor(unchecked: [d, vocabulary], u)
        p["unembed.b_U"] = Tensor(unchecked: [vocabulary], bU.scalars + [0])
        return (c, p)
    }

    /// The BPE tokenizer (given, already in --out, or trained now) with a [MASK] special token, saved in --out.
    func prepareTokenizer(_ texts: [String], outURL: URL) throws -> BPETokenizer {
        let saved = outURL.appendingPathComponent("tokenizer.json")
        if !FileManager.default.fileExists(atPath: saved.path) {
            if let tokenizer {
                try FileManager.default.copyItem(at: URL(fileURLWithPath: tokenizer).appendingPathComponent("tokenizer.json"), to: saved)
            } else {
                let trainingParts = texts.map { String($0.prefix(Int(Double($0.count) * 0.9))) }
                _ = try BPETrainer(vocabSize: vocabSize).train(texts: trainingParts).write(to: outURL)
            }
        }
        guard let bpe = try ModelLoader.loadTokenizer(in: outURL, gpt2Fallback: false) else { throw ValidationError("no tokenizer.json in \(out)") }
        if bpe.specialTokens["[MASK]"] != nil { return bpe }
        // Add [MASK] after the last id.
        guard var json = try JSONSerialization.jsonObject(with: Data(contentsOf: saved)) as? [String: Any] else {
            throw ValidationError("\(saved.path) is not a JSON object")
        }
        var added = json["added_tokens"] as? [[String: Any]] ?? []
        added.append(["id": bpe.vocabSize, "content": "[MASK]", "special": true, "single_word": false, "lstrip": true, "rstrip": false, "normalized": false])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: saved)
        guard let masked = try ModelLoader.loadTokenizer(in: outURL, gpt2Fallback: false), masked.specialTokens["[MASK]"] == bpe.vocabSize else {
            throw ValidationError("could not add [MASK] to \(saved.path)")
        }
        return masked
    }
}
