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
        abstract: "Rewrite a fact with ROME (a rank-one update of one MLP's output matrix), or several with MEMIT, and write the edited model.",
        discussion: """
            ROME (Meng et al. 2022) reads blocks.L.mlp.W_out as a key→value memory. The key is the MLP's hidden \
            activation (hook_post) at the subject's last token, averaged over the prompt behind generated contexts; \
            the new value is found by gradient descent so that the prompt continues with --target; the update \
            is rank one and leaves keys orthogonal to C⁻¹k (C = the keys' second moment over a corpus) alone. \
            C comes from `loupe activation-stats --hook blocks.L.mlp.hook_post` (--stats); --no-second-moment \
            uses the identity (the paper's ablation, less specific).

            MEMIT (Meng et al. 2023; --facts FILE.jsonl --layers A-B) writes several facts at once over a range \
            of MLPs: each fact's target residual z after the last layer (optimised as v*), then layer by layer \
            the update (λC + KKᵀ)⁻¹K Rᵀ that writes the missing residual R, shared among the layers left, at the \
            new keys K; --stats gives C for every layer of the range.

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
              loupe edit --model smollm2-135m --facts facts.jsonl --layers 8-10 --stats l8.safetensors --stats l9.safetensors \\
                --stats l10.safetensors --out edited
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case auto, hf, transformerLens = "transformer-lens"
    }

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The prompt that states the fact, without its answer, e.g. \"The Eiffel Tower is located in the city of\".") var prompt: String?
    @Option(name: .long, help: "The subject as it is written in the prompt, e.g. \"Eiffel Tower\".") var subject: String?
    @Option(name: .long, help: "The new answer: one token (a leading space is added when missing), e.g. Rome.") var target: String?
    @Option(name: .long, help: "Several facts, a JSON Lines file: {\"prompt\", \"subject\", \"target\"} per line, optionally \"paraphrases\", \"neighbours\" (lists) and \"original\"; written together by MEMIT (needs --layers).") var facts: String?
    @Option(name: .long, help: "ROME: the block whose MLP is rewritten (default: a third of the way up, as the paper's GPT-2 XL layer 17 of 48).") var layer: Int?
    @Option(name: .long, help: "MEMIT: the blocks whose MLPs share the edit, A-B or A,B,C (e.g. 8-10); z is set after the last.") var layers: String?
    @Option(name: .long, help: "Second moment of a layer's keys: a file from `loupe activation-stats --hook blocks.L.mlp.hook_post` (one per edited layer; repeatable).") var stats: [String] = []
    @Flag(name: .long, help: "Use the identity instead of the keys' second moment (the paper's ablation).") var noSecondMoment = false
    @Option(name: .long, help: "MEMIT's λ: the keys' second moment counts as this many earlier keys (default: 2 × d_mlp; the paper's 15000 for GPT-J and 20000 for GPT-2 XL are 0.9 and 3.1 times theirs).") var covarianceWeight: Double?
    @Option(name: .long, help: "The answer the model gives now, as a token (default: its top prediction after --prompt).") var original: String?
    @Option(name: .long, help: "Another wording of the prompt about the same subject (repeatable): the edit should carry over.") var paraphrase: [String] = []
    @Option(name: .long, help: "A prompt about another subject with the same answer (repeatable): the edit should leave it.") var neighbour: [String] = []
    @Option(name: .long, parsing: .unconditional, help: "Tokens sampled after the prompt and after \"{subject} is\", before and after the edit, for fluency (0: none; default 40).", transform: Count.nonNegative)
    var generate: Int = 40
    @Option(name: .long, help: "Write the edited model into this folder.") var out: String?
    @Option(name: .long, help: "Folder format: auto (Hugging Face where the shape allows, else transformer-lens), hf, transformer-lens.") var format: Format = .auto
    @Option(name: .long, parsing: .unconditional, help: "Adam steps for the new value.", transform: Count.positive) var steps: Int = 20
    @Option(name: .long, help: "Adam's learning rate.") var learningRate: Float = 0.5
    @Option(name: .long, help: "Weight of the KL term that keeps \"{subject} is a\" unchanged.") var klFactor: Float = 0.0625
    @Option(name: .long, help: "Weight of ‖δ‖/‖v‖².") var weightDecay: Float = 0.5
    @Option(name: .long, help: "‖δ‖ is kept ≤ this × ‖v‖ (default: 4 for ROME, 0.75 for MEMIT).") var clamp: Float?
    @Option(name: .long, help: "Generated contexts, TOKENSxCOUNT,… (default: 5x10,10x10 for ROME, 10x5 for MEMIT; 0x0 for the bare prompt only).") var contexts: String?
    @Option(name: .long, help: "Seed of the contexts and the fluency samples.") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print the result as JSON.") var json = false

    struct Fact: Decodable {
        var prompt: String
        var subject: String
        var target: String
        var paraphrases: [String]?
        var neighbours: [String]?
        var original: String?
    }

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if !stats.isEmpty && noSecondMoment { throw ValidationError("give --stats FILE or --no-second-moment, not both") }
        if facts != nil && (prompt != nil || subject != nil || target != nil) {
            throw ValidationError("give --facts FILE or --prompt, --subject and --target, not both")
        }
        if facts == nil && (prompt == nil || subject == nil || target == nil) {
            throw ValidationError("give --prompt, --subject and --target (or --facts FILE for several facts)")
        }
        if layer != nil && layers != nil { throw ValidationError("give --layer L (ROME) or --layers A-B (MEMIT), not both") }
        if facts != nil && layers == nil { throw ValidationError("--facts writes several facts at once with MEMIT: give --layers A-B too") }
        _ = try parseContexts(contexts ?? "")
        _ = try parseLayers()
    }

    func parseLayers() throws -> [Int]? {
        guard let layers else { return nil }
        let bounds = layers.split(separator: "-")
        if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a <= b { return Array(a...b) }
        let list = layers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--layers: \(layers.quotedForDisplay) is not A-B or A,B,C (e.g. 8-10)")
        }
        return list.compactMap { $0 }.sorted()
    }

    func parseContexts(_ text: String) throws -> [ROMESettings.ContextLength] {
        try text.split(separator: ",").compactMap { part in
            let pieces = part.split(separator: "x")
            guard pieces.count == 2, let t = Int(pieces[0]), let n = Int(pieces[1]), t >= 0, n >= 0 else {
                throw ValidationError("--contexts: \(String(part).quotedForDisplay) is not TOKENSxCOUNT (e.g. 5x10)")
            }
            return t == 0 || n == 0 ? nil : ROMESettings.ContextLength(tokens: t, count: n)
        }
    }

    func readFacts() throws -> [Fact] {
        guard let facts else {
            return [Fact(prompt: prompt ?? "", subject: subject ?? "", target: target ?? "", paraphrases: paraphrase,
                         neighbours: neighbour, original: original)]
        }
        return try readJSONLines(facts, option: "--facts", shape: "{\"prompt\": …, \"subject\": …, \"target\": …}")
    }

    /// C for each layer, from the --stats files (each checked against this model and layer).
    func secondMoments(model: HookedTransformer, layers: [Int], method: String) throws -> ([Int: [Double]], [String: Int]) {
        var moments: [Int: [Double]] = [:], tokens: [String: Int] = [:]
        let c = model.config
        for path in stats {
            let s = try ActivationStatistics(contentsOf: path)
            guard let hook = try? HookName(parsing: s.hook), case .mlpPost(let l) = hook, layers.contains(l) else {
                throw ValidationError("--stats \(path) holds statistics of \(s.hook); the edit needs " + layers.map { "\(HookName.mlpPost($0))" }.joined(separator: ", "))
            }
            guard s.outer, s.width == c.dMLP else {
                throw ValidationError("--stats \(path) has no second moment of width \(c.dMLP) (it was made with --no-outer or for another model)")
            }
            guard s.record.finished else {
                throw ValidationError("--stats \(path) is not finished (\(s.count) tokens so far); run its activation-stats command again to complete it")
            }
            let fingerprint = weightsFingerprint(of: model, layer: l)
            guard s.record.model == fingerprint else {
                throw ValidationError("--stats \(path) was computed with another model (\(s.record.model)) than this one (\(fingerprint))")
            }
            guard moments[l] == nil else { throw ValidationError("--stats: two files for layer \(l)") }
            moments[l] = s.secondMoment
            tokens[String(l)] = s.count
        }
        let missing = layers.filter { moments[$0] == nil }
        if !noSecondMoment && !missing.isEmpty {
            let commands = missing.map {
                "  loupe activation-stats --model \(modelOptions.model) --hook \(HookName.mlpPost($0)) --corpus TEXT_OR_FOLDER --out keys-\($0).safetensors"
            }.joined(separator: "\n")
            throw ValidationError("""
                \(method) needs the second moment of the MLP keys of layer\(missing.count > 1 ? "s" : "") \(missing.map(String.init).joined(separator: ", ")) over a corpus; compute it once with
                \(commands)
                and give --stats for each (or --no-second-moment for the identity)
                """)
        }
        return (moments, tokens)
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let c = model.config
        let memitLayers = try parseLayers()
        let method = memitLayers == nil ? "ROME" : "MEMIT"
        let editLayers = memitLayers ?? [layer ?? c.nLayers / 3]
        for l in editLayers where !(0..<c.nLayers).contains(l) {
            throw ValidationError("layer \(l) is out of range 0..<\(c.nLayers)")
        }
        let factList = try readFacts()
        // A folder format the model cannot be written in is refused before the work, not after.
        if out != nil && format == .hf { _ = try HuggingFaceExport.family(of: model) }
        var settings = ROMESettings(layer: editLayers[editLayers.count - 1])
        settings.steps = steps
        settings.learningRate = learningRate
        settings.klFactor = klFactor
        settings.weightDecay = weightDecay
        settings.clampNormFactor = clamp ?? (memitLayers == nil ? 4 : 0.75)
        settings.contexts = try parseContexts(contexts ?? (memitLayers == nil ? "5x10,10x10" : "10x5"))
        settings.seed = seed
        let (moments, statsTokens) = try secondMoments(model: model, layers: editLayers, method: method)

        // Every fact in tokens, with the answer it replaces.
        var prepared: [(Fact, PreparedEdit, Int)] = []
        for fact in factList {
            let p: PreparedEdit
            do {
                p = try ROME.prepare(model: model, prompt: fact.prompt, subject: fact.subject, target: fact.target, settings: settings)
            } catch let e as EditError { throw ValidationError(e.description) }
            let originalID: Int
            if let o = fact.original {
                originalID = try singleToken(o, "--original", loaded)
            } else {
                var options = ForwardOptions()
                options.lastPositionOnly = true
                originalID = try model.run([try model.toTokens(fact.prompt)], options: options).argmaxLastDim().last ?? 0
            }
            if p.tokens.target == originalID {
                throw ValidationError("the model already says \(loaded.tokenText(originalID).quotedForDisplay) after \(fact.prompt.quotedForDisplay): nothing to edit")
            }
            prepared.append((fact, p, originalID))
        }

        let edited: HookedTransformer
        var histories: [[ROMEStep]] = [], deltaNorms: [Float] = [], valueNorms: [Float] = []
        var layerResiduals: [Float] = []
        let bar = ProgressBar(total: steps * prepared.count, label: "\(method) v*")
        if memitLayers == nil {
            let edit = try ROME.compute(model: model, request: prepared[0].1.tokens, secondMoment: moments[editLayers[0]], settings: settings) { s in
                bar.update(completed: s.step + 1, extra: String(format: "loss %.3f  P(target) %.3f", s.loss, s.targetProbability))
            }
            edited = try edit.applied(to: model)
            histories = [edit.steps]
            valueNorms = [norm(edit.initialValue)]
            deltaNorms = [norm(zip(edit.targetValue, edit.initialValue).map { $0 - $1 })]
        } else {
            var ms = MEMITSettings(layers: editLayers)
            ms.covarianceWeight = covarianceWeight
            ms.value = settings
            let (model2, edit) = try MEMIT.apply(model: model, requests: prepared.map(\.1.tokens), secondMoments: moments, settings: ms) { i, s in
                bar.update(completed: i * steps + s.step + 1, extra: String(format: "fact %d: loss %.3f  P(target) %.3f", i + 1, s.loss, s.targetProbability))
            }
            edited = model2
            histories = edit.steps
            deltaNorms = edit.steps.map { $0.last?.deltaNorm ?? 0 }
            layerResiduals = edit.layers.map(\.meanResidual)
            valueNorms = []
        }
        bar.finish()
        var reports: [FactReport] = []
        for (i, (fact, p, originalID)) in prepared.enumerated() {
            let evaluation = try ROME.evaluate(
                before: model, after: edited, prompt: fact.prompt, paraphrases: fact.paraphrases ?? [], neighbours: fact.neighbours ?? [],
                target: p.tokens.target, original: originalID, generationPrompts: [fact.prompt, fact.subject + " is"],
                generationTokens: generate, seed: seed)
            reports.append(FactReport(
                subject: fact.subject, subjectToken: p.subjectToken, subjectPosition: p.tokens.subjectPositions[0], target: p.targetText,
                targetToken: p.tokens.target, original: loaded.tokenText(originalID), originalToken: originalID, contexts: p.contexts,
                steps: histories[i], valueNorm: valueNorms.isEmpty ? nil : valueNorms[i], deltaNorm: deltaNorms[i], evaluation: evaluation))
        }
        var written: (format: String, files: [String])?
        if let out {
            written = try write(edited, to: out, source: loaded.source)
        }
        let all = reports.flatMap(\.evaluation.probes)
        func rate(_ k: EditProbe.Kind) -> Float? {
            let ps = all.filter { $0.kind == k }
            return ps.isEmpty ? nil : Float(ps.filter(\.success).count) / Float(ps.count)
        }
        let report = EditReport(
            model: modelOptions.model, method: method.lowercased(), layers: editLayers,
            hooks: editLayers.map { "blocks.\($0).mlp.W_out" }, secondMomentTokens: statsTokens,
            covarianceWeight: memitLayers == nil ? nil : covarianceWeight ?? 2 * Double(c.dMLP), layerResiduals: layerResiduals, facts: reports,
            efficacy: rate(.rewrite), paraphrase: rate(.paraphrase), neighbourhood: rate(.neighbourhood),
            out: out, outFormat: written?.format, files: written?.files ?? [])
        if json { try printJSON(report); return }
        printReport(report)
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

    func printReport(_ r: EditReport) {
        let method = r.method.uppercased()
        let where_ = r.hooks.count == 1 ? r.hooks[0] + ", rank one" : r.hooks.joined(separator: ", ") + String(format: ", λ = %.0f", r.covarianceWeight ?? 0)
        print("\(method): \(r.facts.count) fact\(r.facts.count == 1 ? "" : "s") in \(where_); "
              + (r.secondMomentTokens.isEmpty ? "C = identity" : "C over " + r.layers.compactMap { r.secondMomentTokens[String($0)].map(String.init) }.joined(separator: ", ") + " tokens"))
        if !r.layerResiduals.isEmpty {
            print("  mean ‖z − h‖ before each layer's update: " + zip(r.layers, r.layerResiduals).map { String(format: "L%d %.2f", $0, $1) }.joined(separator: ", "))
        }
        for f in r.facts {
            print("")
            print("\(f.subject.quotedForDisplay) → \(f.target.quotedForDisplay) (was \(f.original.quotedForDisplay)); key \(f.subjectToken.quotedForDisplay) (position \(f.subjectPosition)), \(f.contexts.count) contexts")
            if let first = f.steps.first, let last = f.steps.last {
                print(String(format: "  %@: %d passes, loss %.3f → %.3f, P(target) %.3f → %.3f, |δ| %.2f", r.method == "rome" ? "v*" : "z",
                             f.steps.count, first.loss, last.loss, first.targetProbability, last.targetProbability, f.deltaNorm)
                      + (f.valueNorm.map { String(format: " (|v| %.2f)", $0) } ?? ""))
            }
            let rows = f.evaluation.probes
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
            if let b = f.evaluation.fluencyBefore { print(String(format: "  fluency %.2f → %.2f bits", b, f.evaluation.fluencyAfter ?? 0)) }
            for (b, a) in zip(f.evaluation.generationsBefore, f.evaluation.generationsAfter) {
                print("  before: \(b.replacingOccurrences(of: "\n", with: " "))")
                print("  after:  \(a.replacingOccurrences(of: "\n", with: " "))")
            }
        }
        print("")
        func pct(_ x: Float?) -> String { x.map { String(format: "%.0f%%", $0 * 100) } ?? "–" }
        print("efficacy \(pct(r.efficacy))   paraphrase \(pct(r.paraphrase))   neighbourhood \(pct(r.neighbourhood))")
        if let out = r.out, let format = r.outFormat {
            print("wrote \(out) (\(format)): \(r.files.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", "))")
        }
    }
}

struct FactReport: Encodable {
    let subject: String
    let subjectToken: String
    let subjectPosition: Int
    let target: String
    let targetToken: Int
    let original: String
    let originalToken: Int
    let contexts: [String]
    let steps: [ROMEStep]
    let valueNorm: Float?
    let deltaNorm: Float
    let evaluation: EditEvaluation

    enum CodingKeys: String, CodingKey {
        case subject, target, original, contexts, steps, evaluation
        case subjectToken = "subject_token", subjectPosition = "subject_position", targetToken = "target_token"
        case originalToken = "original_token", valueNorm = "value_norm", deltaNorm = "delta_norm"
    }
}

struct EditReport: Encodable {
    let model: String
    let method: String
    let layers: [Int]
    let hooks: [String]
    let secondMomentTokens: [String: Int]
    let covarianceWeight: Double?
    let layerResiduals: [Float]
    let facts: [FactReport]
    let efficacy: Float?
    let paraphrase: Float?
    let neighbourhood: Float?
    let out: String?
    let outFormat: String?
    let files: [String]

    enum CodingKeys: String, CodingKey {
        case model, method, layers, hooks, facts, efficacy, paraphrase, neighbourhood, out, files
        case secondMomentTokens = "second_moment_tokens", covarianceWeight = "covariance_weight"
        case layerResiduals = "layer_residuals", outFormat = "out_format"
    }
}
