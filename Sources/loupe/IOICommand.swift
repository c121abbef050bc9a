// `loupe ioi`: the indirect-object-identification circuit (Wang et al. 2022) of a model, found by path
// patching over a generated dataset, each head with its evidence, and what zeroing each class costs.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender

struct IOI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ioi",
        abstract: "The IOI circuit (name movers, S-inhibition, induction, duplicate-token and previous-token heads) found by path patching.",
        discussion: """
            Generates IOI prompts ("Then, John and Mary went to the store. John gave a drink to" → " Mary") from \
            the paper's 15 templates, half ABBA and half BABA, with names that are single tokens for the model, \
            and their ABC corruptions (three fresh names, none repeated). The metric is the logit difference \
            IO − S at the last token. Path patching (senders' outputs from the corruption, every other head \
            frozen) then finds, stage by stage: heads → logits (name movers, negative name movers); heads → the \
            name movers' queries at END (S-inhibition); heads → the S-inhibition heads' values (induction heads \
            if S2 attends to S1+1, duplicate-token heads if to S1); heads → the induction heads' keys \
            (previous-token heads). A head joins a class when its effect moves the mean logit difference by at \
            least --threshold of its clean value. Finally each class, and the whole circuit, is zero-ablated.

            SmolLM2-135M with 16 prompts takes a few minutes on two cores.

            Examples:
              loupe ioi --model smollm2-135m
              loupe ioi --model smollm2-135m --prompts 32 --json > ioi.json
              loupe ioi --model smollm2-135m --html ioi.html --write-dataset ioi.jsonl
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "How many prompts to generate.", transform: Count.positive) var prompts: Int = 16
    @Option(name: .long, help: "Seed of the names, places and objects.") var seed: UInt64 = 0
    @Option(name: .long, help: "The smallest path-patching effect, as a fraction of the clean logit difference, that puts a head in a class.")
    var threshold: Float = 0.02
    @Option(name: .long, parsing: .unconditional, help: "At most this many heads per class.", transform: Count.positive) var maxHeads: Int = 6
    @Option(name: .long, help: "Write the prompts as a JSON Lines patching dataset ({clean, corrupt, answer, wrong} per line, for loupe patch/path-patch --dataset).")
    var writeDataset: String?
    @Option(name: .long, help: "Write an HTML page: the circuit, each stage's layer × head effects, and the knockouts.") var html: String?
    @Flag(name: .long, help: "Print JSON: prompts, answers, wrong, logit_diff, the head classes, evidence, stages, knockouts.") var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard threshold > 0 && threshold.isFinite else { throw ValidationError("--threshold must be a positive fraction, found \(threshold)") }
    }

    struct Evidence: Encodable { let head: String; let effect: Float; let attention: Float; let attention_from: String; let attention_to: String }
    struct LogitDiff: Encodable { let mean: Float; let clean: [Float]; let corrupted_mean: Float }
    struct Knockout: Encodable { let name: String; let heads: [String]; let logit_diff: Float }
    struct Output: Encodable {
        let model: String
        let prompts: [String]; let corrupted: [String]; let answers: [String]; let wrong: [String]
        let logit_diff: LogitDiff
        let name_movers: [String]; let negative_name_movers: [String]; let s_inhibition: [String]
        let induction: [String]; let duplicate_token: [String]; let previous_token: [String]; let other_s2_senders: [String]
        let evidence: [String: [Evidence]]
        let stages: [String: AnyNested]
        let knockouts: [Knockout]
        let threshold: Float
    }

    struct DatasetLine: Encodable { let clean: String; let corrupt: String; let answer: String; let wrong: String }

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let data = try IOIDataset.generate(count: prompts, seed: seed, tokenizer: tokenizer)
        if let writeDataset {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let lines = try data.map { String(decoding: try encoder.encode(DatasetLine(clean: $0.text, corrupt: $0.corrupted, answer: $0.io, wrong: $0.s)), as: UTF8.self) }
            do { try (lines.joined(separator: "\n") + "\n").write(toFile: writeDataset, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("--write-dataset \(writeDataset): \(error.localizedDescription)")
            }
            FileHandle.standardError.write(Data("wrote \(writeDataset)\n".utf8))
        }
        let progress = ProgressReporter("IOI path patching")
        let circuit = try loaded.model.ioiCircuit(data, search: IOISearch(threshold: threshold, maxHeads: maxHeads)) { stage, done, total in
            progress.update(done, total, extra: stage)
        }
        progress.finish()
        if let html { try writeHTML(circuit, to: html) }
        if json {
            var evidence: [String: [Evidence]] = [:]
            for (name, heads) in circuit.classes + [("other_s2_senders", circuit.otherS2Senders)] {
                evidence[name] = heads.map { Evidence(head: $0.name, effect: $0.effect, attention: $0.attention, attention_from: $0.attentionFrom, attention_to: $0.attentionTo) }
            }
            let names = { (heads: [IOIHead]) in heads.map(\.name) }
            try printJSON(Output(model: modelOptions.model, prompts: data.map(\.text), corrupted: data.map(\.corrupted),
                                 answers: data.map(\.io), wrong: data.map(\.s),
                                 logit_diff: LogitDiff(mean: circuit.logitDiff, clean: circuit.logitDiffs, corrupted_mean: circuit.corruptedLogitDiff),
                                 name_movers: names(circuit.nameMovers), negative_name_movers: names(circuit.negativeNameMovers),
                                 s_inhibition: names(circuit.sInhibition), induction: names(circuit.induction),
                                 duplicate_token: names(circuit.duplicateToken), previous_token: names(circuit.previousToken),
                                 other_s2_senders: names(circuit.otherS2Senders), evidence: evidence,
                                 stages: Dictionary(uniqueKeysWithValues: circuit.stages.map { ($0.name, AnyNested($0.effect)) }),
                                 knockouts: circuit.knockouts.map { Knockout(name: $0.name, heads: $0.heads, logit_diff: $0.logitDiff) },
                                 threshold: threshold))
            return
        }
        print("IOI on \(data.count) prompts, e.g. \(data[0].text.quotedForDisplay) → \(data[0].io.quotedForDisplay) (not \(data[0].s.quotedForDisplay))")
        print(String(format: "logit difference IO − S: clean %.3f, ABC-corrupted %.3f", circuit.logitDiff, circuit.corruptedLogitDiff))
        print(String(format: "a head joins a class when path patching moves the logit difference by ≥ %.0f%%\n", threshold * 100))
        for (name, heads) in circuit.classes + [("other S2 senders", circuit.otherS2Senders)] {
            let label = name.replacingOccurrences(of: "_", with: " ")
            guard !heads.isEmpty else { print("\(label): none"); continue }
            print("\(label):")
            for head in heads {
                print("  " + head.name.padding(toLength: 7, withPad: " ", startingAt: 0)
                      + String(format: " effect %+6.1f%%   attention %@ → %@ %.2f", head.effect * 100, head.attentionFrom, head.attentionTo, head.attention))
            }
        }
        print("\nzero-ablated (hook_z, every position): mean logit difference")
        for k in circuit.knockouts {
            print("  " + k.name.replacingOccurrences(of: "_", with: " ").padding(toLength: 21, withPad: " ", startingAt: 0)
                  + String(format: " %7.3f  (%+5.0f%%)  %@", k.logitDiff, (k.logitDiff - circuit.logitDiff) / circuit.logitDiff * 100, k.heads.joined(separator: " ")))
        }
    }

    private func writeHTML(_ circuit: IOICircuit, to path: String) throws {
        func column(_ name: String, _ heads: [IOIHead]) -> CircuitDiagram.Column {
            .init(name: name, boxes: heads.map(\.name),
                  details: heads.map { String(format: "%+.0f%%, %@→%@ %.2f", $0.effect * 100, $0.attentionFrom, $0.attentionTo, $0.attention) })
        }
        let earlier = circuit.induction + circuit.duplicateToken
        var columns = [column("previous token", circuit.previousToken), column("induction / duplicate", earlier),
                       column("S-inhibition", circuit.sInhibition), column("name movers", circuit.nameMovers + circuit.negativeNameMovers)]
        columns.append(.init(name: "logits", boxes: ["IO − S"]))
        let diagram = try CircuitDiagram(title: "The IOI circuit", columns: columns,
                                         edges: [.init(from: 0, to: 1, label: "K"), .init(from: 1, to: 2, label: "V"),
                                                 .init(from: 2, to: 3, label: "Q"), .init(from: 3, to: 4, label: "direct")],
                                         note: "Each head: its path-patching effect on the mean logit difference, and the attention its class is defined by (mean over the prompts). Negative name movers are listed with the name movers.")
        var views: [any HTMLView] = [diagram]
        var rows: [[String]] = []
        for k in circuit.knockouts {
            rows.append([k.name.replacingOccurrences(of: "_", with: " "), String(format: "%.3f", k.logitDiff),
                         String(format: "%+.0f%%", (k.logitDiff - circuit.logitDiff) / circuit.logitDiff * 100), k.heads.joined(separator: " ")])
        }
        views.append(try TableView(title: "Zero-ablation", header: ["heads", "logit difference", "change", "which"], rows: rows,
                                   note: String(format: "Clean mean logit difference %.3f; ABC-corrupted %.3f.", circuit.logitDiff, circuit.corruptedLogitDiff)))
        for (name, effect) in circuit.stages {
            let (nL, h) = (effect.shape[0], effect.shape[1])
            views.append(try Heatmap(values: effect.scalars, rows: nL, columns: h, rowLabels: layerLabels(nL), columnLabels: headLabels(h),
                                     title: "path patching to \(name.replacingOccurrences(of: "_", with: " ")): (patched − clean) / clean"))
        }
        views.append(try TableView(title: "Prompts", header: ["prompt", "IO", "S", "corrupted"],
                                   rows: circuit.prompts.map { [$0.text, $0.io, $0.s, $0.corrupted] }))
        var report = Report(title: "IOI circuit", metadata: [("model", modelOptions.model), ("prompts", "\(circuit.prompts.count)"),
                                                            ("threshold", String(format: "%.3f", threshold))])
        for view in views { report.add(view) }
        try report.write(to: path)
        FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
    }
}
