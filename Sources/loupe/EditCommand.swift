// `loupe edit`: ROME, one fact rewritten in one MLP, evaluated as the paper does, and the edited model written
// as a Hugging Face folder.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeRender
import LoupeStore
import LoupeTensor
import LoupeTraining

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Rewrite a fact with ROME (a rank-one update of one MLP's output matrix) and write the edited model.",
        discussion: """
            ROME (Meng et al. 2022) reads blocks.L.mlp.W_out as a key→value memory. The key is the MLP's hidden \
            activation (hook_post) at the subject's last token, averaged over the prompt behind generated contexts; \
            the new value is found by gradient descent so that the prompt continues with --target; the update \
            is rank one and leaves keys orthogonal to C⁻¹k (C = the keys' second moment over a corpus) alone. \
            C comes from `loupe activation-stats --hook blocks.L.mlp.hook_post` (--stats); --no-second-moment \
            uses the identity (the paper's ablation, less specific).

            The edit is then measured as in the paper: P(target) and P(original answer) after the prompt, after \
            each --paraphrase (should move too) and each --neighbour prompt about another subject with the same \
            answer (should not), before and after; and the n-gram entropy of sampled text (fluency). --out writes \
            the edited model: a Hugging Face folder (config.json, model.safetensors, tokenizer files) that Loupe \
            and transformers load, for GPT-2 and Llama shapes; Loupe's TransformerLens layout otherwise.

            Example:
              loupe activation-stats --model smollm2-135m --hook blocks.10.mlp.hook_post --corpus books/ --out l10-keys.safetensors
              loupe edit --model smollm2-135m --prompt "The Eiffel Tower is located in the city of" --subject "Eiffel Tower" \\
                --target Rome --layer 10 --stats l10-keys.safetensors --paraphrase "The Eiffel Tower stands in" \\
                --neighbour "The Louvre is located in the city of" --out eiffel-rome
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case auto, hf, transformerLens = "transformer-lens"
    }

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The prompt that states the fact, without its answer, e.g. \"The Eiffel Tower is located in the city of\".") var prompt: String
    @Option(name: .long, help: "The subject as it is written in the prompt, e.g. \"Eiffel Tower\".") var subject: String
    @Option(name: .long, help: "The new answer: one token (a leading space is added when missing), e.g. Rome.") var target: String
    @Option(name: .long, help: "The block whose MLP is rewritten (default: a third of the way up, as the paper's GPT-2 XL layer 17 of 48).") var layer: Int?
    @Option(name: .long, help: "Second moment of the layer's keys: a file from `loupe activation-stats --hook blocks.L.mlp.hook_post`.") var stats: String?
    @Flag(name: .long, help: "Use the identity instead of the keys' second moment (the paper's ablation).") var noSecondMoment = false
    @Option(name: .long, help: "The answer the model gives now, as a token (default: its top prediction after --prompt).") var original: String?
    @Option(name: .long, help: "Another wording of the prompt about the same subject (repeatable): the edit should carry over.") var paraphrase: [String] = []
    @Option(name: .long, help: "A prompt about another subject with the same answer (repeatable): the edit should leave it.") var neighbour: [String] = []
    @Option(name: .long, parsing: .unconditional, help: "Tokens sampled after the prompt and after \"{subject} is\", before and after the edit, for fluency (0: none; default 40).", transform: Count.nonNegative)
    var generate: Int = 40
    @Option(name: .long, help: "Write the edited model into this folder.") var out: String?
    @Option(name: .long, help: "Folder format: auto (Hugging Face where the shape allows, else transformer-lens), hf, transformer-lens.") var format: Format = .auto
    @Option(name: .long, parsing: .unconditional, help: "Adam steps for the new value (default: 20).", transform: Count.positive) var steps: Int = 20
    @Option(name: .long, help: "Adam's learning rate (default: 0.5).") var learningRate: Float = 0.5
    @Option(name: .long, help: "Weight of the KL term that keeps \"{subject} is a\" unchanged (default: 0.0625).") var klFactor: Float = 0.0625
    @Option(name: .long, help: "Weight of ‖δ‖/‖v‖² (default: 0.5).") var weightDecay: Float = 0.5
    @Option(name: .long, help: "‖δ‖ is kept ≤ this × ‖v‖ (default: 4).") var clamp: Float = 4
    @Option(name: .long, help: "Generated contexts, TOKENSxCOUNT,… (default: 5x10,10x10; 0x0 for the bare prompt only).") var contexts: String = "5x10,10x10"
    @Option(name: .long, help: "Seed of the contexts and the fluency samples (default: 0).") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print the result as JSON.") var json = false

    func validate() throws {
        if stats != nil && noSecondMoment { throw ValidationError("give --stats FILE or --no-second-moment, not both") }
        _ = try parseContexts()
    }

    func parseContexts() throws -> [ROMESettings.ContextLength] {
        try contexts.split(separator: ",").compactMap { part in
            let pieces = part.split(separator: "x")
            guard pieces.count == 2, let t = Int(pieces[0]), let n = Int(pieces[1]), t >= 0, n >= 0 else {
                throw ValidationError("--contexts: \(String(part).quotedForDisplay) is not TOKENSxCOUNT (e.g. 5x10)")
            }
            return t == 0 || n == 0 ? nil : ROMESettings.ContextLength(tokens: t, count: n)
        }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let c = model.config
        let layer = self.layer ?? c.nLayers / 3
        guard (0..<c.nLayers).contains(layer) else { throw ValidationError("--layer \(layer) is out of range 0..<\(c.nLayers)") }
        var settings = ROMESettings(layer: layer)
        settings.steps = steps
        settings.learningRate = learningRate
        settings.klFactor = klFactor
        settings.weightDecay = weightDecay
        settings.clampNormFactor = clamp
        settings.contexts = try parseContexts()
        settings.seed = seed

        let hook = HookName.mlpPost(layer)
        let secondMoment: [Double]?
        var statsTokens: Int?
        if let path = stats {
            let s = try ActivationStatistics(contentsOf: path)
            guard s.hook == hook.description else {
                throw ValidationError("--stats \(path) holds statistics of \(s.hook); layer \(layer) needs \(hook)")
            }
            guard s.outer, s.width == c.dMLP else {
                throw ValidationError("--stats \(path) has no second moment of width \(c.dMLP) (it was made with --no-outer or for another model)")
            }
            guard s.record.finished else {
                throw ValidationError("--stats \(path) is not finished (\(s.count) tokens so far); run its activation-stats command again to complete it")
            }
            let fingerprint = weightsFingerprint(of: model, layer: layer)
            guard s.record.model == fingerprint else {
                throw ValidationError("--stats \(path) was computed with another model (\(s.record.model)) than this one (\(fingerprint))")
            }
            secondMoment = s.secondMoment
            statsTokens = s.count
        } else if noSecondMoment {
            secondMoment = nil
        } else {
            throw ValidationError("""
                ROME needs the second moment of layer \(layer)'s MLP keys over a corpus; compute it once with
                  loupe activation-stats --model \(modelOptions.model) --hook \(hook) --corpus TEXT_OR_FOLDER --out keys-\(layer).safetensors
                and give --stats keys-\(layer).safetensors (or --no-second-moment for the identity)
                """)
        }

        let prepared: PreparedEdit
        do {
            prepared = try ROME.prepare(model: model, prompt: prompt, subject: subject, target: target, settings: settings)
        } catch let e as EditError { throw ValidationError(e.description) }
        let promptTokens = try model.toTokens(prompt)
        let originalID: Int
        if let original {
            originalID = try singleToken(original, "--original", loaded)
        } else {
            var options = ForwardOptions()
            options.lastPositionOnly = true
            originalID = try model.run([promptTokens], options: options).argmaxLastDim().last ?? 0
        }
        let targetID = prepared.tokens.target
        if targetID == originalID {
            throw ValidationError("the model already says \(loaded.tokenText(targetID).quotedForDisplay) after the prompt: nothing to edit")
        }
        let progress = ProgressBar(total: steps, label: "ROME v*")
        let edit = try ROME.compute(model: model, request: prepared.tokens, secondMoment: secondMoment, settings: settings) { s in
            progress.update(completed: s.step + 1, extra: String(format: "loss %.3f  P(target) %.3f", s.loss, s.targetProbability))
        }
        progress.finish()
        let edited = try edit.applied(to: model)
        let evaluation = try ROME.evaluate(
            before: model, after: edited, prompt: prompt, paraphrases: paraphrase, neighbours: neighbour, target: targetID,
            original: originalID, generationPrompts: [prompt, subject + " is"], generationTokens: generate, seed: seed)

        var written: (format: String, files: [String])?
        if let out {
            written = try write(edited, to: out, source: loaded.source)
        }
        let report = EditReport(
            model: modelOptions.model, layer: layer, hook: "blocks.\(layer).mlp.W_out", subject: subject,
            subjectToken: prepared.subjectToken, subjectPosition: prepared.tokens.subjectPositions[0],
            target: prepared.targetText, targetToken: targetID, original: loaded.tokenText(originalID), originalToken: originalID,
            contexts: prepared.contexts, secondMomentTokens: statsTokens, steps: edit.steps,
            valueNorm: norm(edit.initialValue), deltaNorm: norm(zip(edit.targetValue, edit.initialValue).map { $0 - $1 }),
            evaluation: evaluation, out: out, outFormat: written?.format, files: written?.files ?? [])
        if json { try printJSON(report); return }
        printReport(report, loaded: loaded)
    }

    func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    func write(_ model: HookedTransformer, to path: String, source: String) throws -> (String, [String]) {
        let url = URL(fileURLWithPath: path)
        switch format {
        case .hf:
            let (family, files) = try HuggingFaceExport.write(model, to: url, tokenizerSource: source)
            return ("Hugging Face \(family.rawValue)", files.map(\.path))
        case .transformerLens:
            return try writeTransformerLens(model, url, source)
        case .auto:
            if (try? HuggingFaceExport.family(of: model)) != nil {
                let (family, files) = try HuggingFaceExport.write(model, to: url, tokenizerSource: source)
                return ("Hugging Face \(family.rawValue)", files.map(\.path))
            }
            return try writeTransformerLens(model, url, source)
        }
    }

    func writeTransformerLens(_ model: HookedTransformer, _ url: URL, _ source: String) throws -> (String, [String]) {
        try TransformerLensFormat.write(model, to: url)
        var files = [url.appendingPathComponent("config.json").path, url.appendingPathComponent("model.safetensors").path]
        let tokenizer = URL(fileURLWithPath: source).appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: tokenizer.path) {
            let dest = url.appendingPathComponent("tokenizer.json")
            try writeAtomically(try Data(contentsOf: tokenizer), to: dest)
            files.append(dest.path)
        }
        return ("transformer-lens", files)
    }

    func printReport(_ r: EditReport, loaded: LoadedModel) {
        let first = r.steps.first, last = r.steps.last
        print("ROME: \(r.subject.quotedForDisplay) → \(r.target.quotedForDisplay) (was \(r.original.quotedForDisplay)) in \(r.hook), rank one")
        print("  key: \(r.subjectToken.quotedForDisplay) (position \(r.subjectPosition)), averaged over \(r.contexts.count) contexts; "
              + (r.secondMomentTokens.map { "C over \($0) tokens" } ?? "C = identity"))
        if let first, let last {
            print(String(format: "  v*: %d passes, loss %.3f → %.3f, P(target) %.3f → %.3f, |δ| %.2f (|v| %.2f)",
                         r.steps.count, first.loss, last.loss, first.targetProbability, last.targetProbability, r.deltaNorm, r.valueNorm))
        }
        print("")
        let rows = r.evaluation.probes
        let width = min(56, rows.map { $0.prompt.count }.max() ?? 10)
        print(String(repeating: " ", count: 15) + "prompt".padding(toLength: width + 2, withPad: " ", startingAt: 0)
              + "P(target) before → after    P(original) before → after")
        for p in rows {
            let text = p.prompt.count > width ? String(p.prompt.prefix(width - 1)) + "…" : p.prompt
            print(p.kind.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) + " "
                  + text.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                  + String(format: "%9.4f → %-9.4f      %9.4f → %-9.4f  %@", p.targetBefore, p.targetAfter, p.originalBefore, p.originalAfter,
                           p.success ? "ok" : "no"))
        }
        print("")
        func pct(_ x: Float?) -> String { x.map { String(format: "%.0f%%", $0 * 100) } ?? "–" }
        print("efficacy \(pct(r.evaluation.efficacy))   paraphrase \(pct(r.evaluation.paraphrase))   neighbourhood \(pct(r.evaluation.neighbourhood))"
              + (r.evaluation.fluencyBefore.map { b in String(format: "   fluency %.2f → %.2f bits", b, r.evaluation.fluencyAfter ?? 0) } ?? ""))
        for (b, a) in zip(r.evaluation.generationsBefore, r.evaluation.generationsAfter) {
            print("  before: \(b.replacingOccurrences(of: "\n", with: " "))")
            print("  after:  \(a.replacingOccurrences(of: "\n", with: " "))")
        }
        if let out = r.out, let format = r.outFormat {
            print("\nwrote \(out) (\(format)): \(r.files.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", "))")
        }
    }
}

struct EditReport: Encodable {
    let model: String
    let layer: Int
    let hook: String
    let subject: String
    let subjectToken: String
    let subjectPosition: Int
    let target: String
    let targetToken: Int
    let original: String
    let originalToken: Int
    let contexts: [String]
    let secondMomentTokens: Int?
    let steps: [ROMEStep]
    let valueNorm: Float
    let deltaNorm: Float
    let evaluation: EditEvaluation
    let out: String?
    let outFormat: String?
    let files: [String]

    enum CodingKeys: String, CodingKey {
        case model, layer, hook, subject, target, original, contexts, steps, evaluation, out, files
        case subjectToken = "subject_token", subjectPosition = "subject_position", targetToken = "target_token"
        case originalToken = "original_token", secondMomentTokens = "second_moment_tokens", valueNorm = "value_norm"
        case deltaNorm = "delta_norm", outFormat = "out_format"
    }
}
