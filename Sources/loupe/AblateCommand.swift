// `loupe ablate`: zero, mean or resample ablation of a hook (a head, a position) over a prompt or a dataset,
// or of every head in turn.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender

struct Ablate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablate",
        abstract: "Knock out an activation (zero, mean or resample) and measure what the model loses, over a dataset.",
        discussion: """
            zero sets the activation to 0; mean to its mean over the dataset's prompts and positions (what is \
            specific to the input goes, the average contribution stays); resample to the same activation on \
            another prompt of the dataset (a seeded derangement, same position; the prompts must have one \
            length). --head picks one head of hooks with a head axis (q, k, v, z, result, pattern); --position \
            one position (negative: from each prompt's end, -1 the last). --heads ablates every head's hook_z in \
            turn and prints the layer × head grid of the metric's change.

            Each prompt is scored at its last position: the logit difference answer − wrong, or with --metric \
            prob or loss the answer's probability or negative log-probability. --dataset is JSON Lines: \
            {"prompt": …, "answer": …, "wrong": …} per line (wrong optional for prob and loss).

            Examples:
              loupe ablate --model smollm2-135m --prompt "When Mary and John went to the store, John gave a drink to" --answer " Mary" --wrong " John" --hook blocks.23.attn.hook_z --head 3
              loupe ablate --model smollm2-135m --dataset ioi.jsonl --heads --kind mean
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "One prompt (with --answer and, for logit-diff, --wrong).") var prompt: String?
    @Option(name: .long, help: "The token the prompt should be followed by (id or single-token text).") var answer: String?
    @Option(name: .long, help: "The competing token, for logit differences.") var wrong: String?
    @Option(name: .long, help: "A JSON Lines dataset: {\"prompt\", \"answer\", \"wrong\"} per line.") var dataset: String?
    @Option(name: .long, help: "The hook to ablate, e.g. blocks.3.attn.hook_z or blocks.2.hook_mlp_out.") var hook: String?
    @Option(name: .long, help: "One head of the hook (q, k, v, z, result, pattern).") var head: Int?
    @Option(name: .long, parsing: .unconditional, help: "One position (negative: from each prompt's end; -1 the last).") var position: Int?
    @Flag(name: .long, help: "Ablate every head's hook_z in turn (layer × head grid).") var heads = false
    @Option(name: .long, help: "zero, mean or resample.") var kind: AblationKind = .zero
    @Option(name: .long, help: "logit-diff (answer − wrong), prob (of the answer) or loss (of the answer).") var metric: PatchMetricKind = .logitDiff
    @Option(name: .long, help: "Seed of the resampling.") var seed: UInt64 = 0
    @Flag(name: .long, help: "Print the result as JSON.") var json = false

    struct Line: Decodable { var prompt: String; var answer: String; var wrong: String? }

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if (prompt == nil) == (dataset == nil) { throw ValidationError("give --prompt (with --answer) or --dataset FILE.jsonl") }
        if prompt != nil && answer == nil { throw ValidationError("--prompt needs --answer, the token it should be followed by") }
        if dataset != nil && (answer != nil || wrong != nil) { throw ValidationError("--answer and --wrong go with --prompt; a dataset gives them per line") }
        if heads == (hook != nil) { throw ValidationError("give --hook NAME (with --head, --position) or --heads for every head") }
        if heads && head != nil { throw ValidationError("--heads ablates every head; leave out --head") }
        if metric == .normalizedLogitDiff { throw ValidationError("--metric normalized-logit-diff belongs to patching; use logit-diff") }
    }

    func examples(_ loaded: LoadedModel) throws -> [(String, AblationExample)] {
        var lines: [Line] = []
        if let prompt, let answer {
            lines = [Line(prompt: prompt, answer: answer, wrong: wrong)]
        } else if let dataset {
            lines = try readJSONLines(dataset, option: "--dataset", shape: "{\"prompt\": …, \"answer\": …, \"wrong\": …}")
        }
        let quiet = lines.count > 1
        return try lines.map { l in
            let a = quiet ? try loaded.model.singleToken(l.answer) : try singleToken(l.answer, "--answer", loaded)
            let w = try l.wrong.map { quiet ? try loaded.model.singleToken($0) : try singleToken($0, "--wrong", loaded) }
            guard w != nil || !metric.needsWrongToken else {
                throw ValidationError("--metric \(metric.rawValue) needs a wrong token (--wrong, or \"wrong\" on every line)")
            }
            let tokens = try encodePrompt(l.prompt, chat: false, loaded: loaded)
            return (l.prompt, AblationExample(tokens: tokens, metric: try metric.metric(answer: a, wrong: w)))
        }
    }

    func run() throws {
        let loaded = try modelOptions.load()
        let model = loaded.model
        let data = try examples(loaded)
        let list = data.map(\.1)
        if heads {
            let c = model.config
            let bar = ProgressBar(total: c.nLayers * c.nHeads, label: "ablate heads")
            let (clean, grid) = try model.ablateEveryHead(kind: kind, examples: list, position: position, seed: seed) { done, _ in
                bar.update(completed: done)
            }
            bar.finish()
            if json {
                struct Out: Encodable { let kind: String; let metric: String; let prompts: Int; let clean: Float; let ablated: [[Float]] }
                try printJSON(Out(kind: kind.rawValue, metric: metric.rawValue, prompts: list.count, clean: clean, ablated: grid))
                return
            }
            print(String(format: "%@ ablation of every head's hook_z over %d prompt%@: mean %@ %.4f unablated; change when ablated:",
                         kind.rawValue, list.count, list.count == 1 ? "" : "s", metric.rawValue, clean))
            printGrid(rowLabels: layerLabels(c.nLayers), columnLabels: headLabels(c.nHeads), values: { grid[$0][$1] - clean }, format: "%7.3f")
            let ranked = (0..<c.nLayers).flatMap { l in (0..<c.nHeads).map { (l, $0, grid[l][$0] - clean) } }
                .sorted { abs($0.2) > abs($1.2) }.prefix(8)
            print("\nlargest changes: " + ranked.map { String(format: "L%dH%d %+.3f", $0.0, $0.1, $0.2) }.joined(separator: ", "))
            return
        }
        guard let hook else { return }
        let site = AblationSite(hook: try HookName(parsing: hook), head: head, position: position)
        let r = try model.ablate(site, kind: kind, examples: list, seed: seed)
        if json {
            struct Out: Encodable {
                let site: String; let kind: String; let metric: String; let prompts: [String]
                let clean: [Float]; let ablated: [Float]; let meanClean: Float; let meanAblated: Float
                enum CodingKeys: String, CodingKey { case site, kind, metric, prompts, clean, ablated, meanClean = "mean_clean", meanAblated = "mean_ablated" }
            }
            try printJSON(Out(site: site.description, kind: kind.rawValue, metric: metric.rawValue, prompts: data.map(\.0),
                              clean: r.clean, ablated: r.ablated, meanClean: r.meanClean, meanAblated: r.meanAblated))
            return
        }
        print(String(format: "%@ ablation of %@ over %d prompt%@: mean %@ %.4f → %.4f (%+.4f)", kind.rawValue, site.description,
                     list.count, list.count == 1 ? "" : "s", metric.rawValue, r.meanClean, r.meanAblated, r.meanAblated - r.meanClean))
        if data.count > 1 {
            for ((text, _), (c, a)) in zip(data, zip(r.clean, r.ablated)).prefix(20) {
                let shownText = text.count > 60 ? String(text.prefix(59)) + "…" : text
                print(String(format: "  %9.4f → %-9.4f %@", c, a, shownText))
            }
            if data.count > 20 { print("  … \(data.count - 20) more (--json for all)") }
        }
    }
}
