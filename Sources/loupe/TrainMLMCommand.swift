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
            added. The model is BERT-shaped (bidirectional attention, LayerNorm after attention and MLP, a \
            masked-LM head), trained on random windows of the first 90% of each text with BERT's rule: 15% of \
            positions chosen, 80% of those masked, 10% replaced by a random token, 10% kept; the loss is at \
            the chosen positions. The last 10% of each text is held out: the run ends with the masked-token \
            loss and accuracy there. --out holds checkpoints and the model; --export writes it in float16 with \
            its tokenizer (the form Loupe ships).

            Examples:
              loupe train mlm --corpus austen/*.txt --out mlm-run --steps 3000
              loupe train mlm --corpus austen/*.txt --tokenizer Sources/LoupeModels/Resources/austen-lm --out mlm-run --export my-mlm
            """)

    @Option(name: .long, parsing: .upToNextOption, help: "UTF-8 text files.") var corpus: [String]
    @Option(name: .long, help: "A folder with the BPE tokenizer.json to use instead of training one ([MASK] is added).") var tokenizer: String?
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
    @Option(name: .long, help: "Folder for checkpoints and the model.") var out: String
    @Option(name: .long, parsing: .unconditional, transform: Count.nonNegative) var checkpointEvery: Int = 250
    @Flag(name: .long, help: "Continue the run checkpointed in --out.") var resume = false
    @Option(name: .long, help: "Also write the float16 model and its tokenizer here.") var export: String?
    @Option(name: .long, parsing: .unconditional, transform: Count.positive) var threads: Int = 2
    @Flag(name: .long, help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
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
            let config = ModelConfig(architecture: "loupe-mlm", nLayers: layers, dModel: dModel, nHeads: heads, dHead: dModel / heads,
                                     dMLP: dMLP, dVocab: bpe.vocabSize, nCtx: ctx, normalization: .layerNorm, activation: .gelu,
                                     bidirectional: true, postLayerNorm: true, maskedLMHead: true)
            let settings = TrainingSettings(steps: steps, seed: seed,
                                            optimizer: AdamWConfig(learningRate: lr, totalSteps: steps, warmupSteps: min(200, steps / 10), weightDecay: 0.01),
                                            checkpointEvery: checkpointEvery)
            trainer = try Trainer(config: config, settings: settings)
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
        added.append(["id": bpe.vocabSize, "content": "[MASK]", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: saved)
        guard let masked = try ModelLoader.loadTokenizer(in: outURL, gpt2Fallback: false), masked.specialTokens["[MASK]"] == bpe.vocabSize else {
            throw ValidationError("could not add [MASK] to \(saved.path)")
        }
        return masked
    }
}
