// `loupe report`: the standard views of one prompt in one self-contained HTML page.

import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One HTML page with the standard views of a prompt: predictions, logit lens, attention of every head, head scores, direct logit attribution.",
        discussion: """
            The page is self-contained (inline CSS, script and data; nothing is fetched). Attribution is to --answer (default: the top prediction), minus --wrong when given.

            Example:
              loupe report --model smollm2-135m --prompt "When Mary and John went to the store, John gave a drink to" --answer " Mary" --wrong " John" --html report.html
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: [.customLong("html"), .customLong("out")], help: "The HTML file to write.") var out: String
    @Option(name: .long, help: "Answer token for attribution (id or single-token text; default: the top prediction).") var answer: String?
    @Option(name: .long, help: "Wrong token: attribute logit[answer] − logit[wrong].") var wrong: String?
    @Option(name: [.customLong("top"), .customLong("top-k")], parsing: .unconditional, help: "Predictions to list, and lens candidates per cell.", transform: Count.nonNegative) var topK: Int = 10

    func run() throws {
        guard topK >= 1 else { throw ValidationError("--top must be at least 1, found \(topK)") }
        let loaded = try modelOptions.load()
        let model = loaded.model
        let tokens = try input.tokens(loaded)
        let (nL, h) = (model.config.nLayers, model.config.nHeads)
        let progress = ProgressBar(total: 5, label: "report")
        progress.update(completed: 0, extra: "predictions")
        let predictions = try model.run([tokens]).topPredictions(k: topK)
        progress.update(completed: 1, extra: "logit lens")
        let lens = try model.logitLens(tokens: tokens)
        let summaries = try tokens.indices.map { try lens.summary(position: $0, topK: min(topK, 5)) }   // [pos][label]
        progress.update(completed: 2, extra: "attention")
        let heads = try model.attentionAnalysis(tokens: tokens)
        progress.update(completed: 3, extra: "head scores")
        let scores = try model.detectHeads(tokens: tokens)
        progress.update(completed: 4, extra: "attribution")
        let a = try answer.map { try singleToken($0, "--answer", loaded) } ?? predictions[0].id
        let b = try wrong.map { try singleToken($0, "--wrong", loaded) }
        let dla = try model.directLogitAttribution(tokens: tokens, answer: a, wrong: b)
        progress.update(completed: 5)
        progress.finish()

        let target = "logit[\(shown(loaded.tokenText(a)))]" + (b.map { " − logit[\(shown(loaded.tokenText($0)))]" } ?? "")
        let data = PromptReportData(
            model: "\(modelOptions.model) (\(loaded.summary))", prompt: input.prompt ?? input.ids ?? "",
            tokens: tokens.map(loaded.tokenText),
            predictions: predictions.map { .init(token: loaded.tokenText($0.id), probability: $0.probability, logit: $0.logit) },
            lensLabels: lens.labels,
            lens: lens.labels.indices.map { l in tokens.indices.map { p in
                summaries[p][l].top.map { LogitLensView.Candidate(token: loaded.tokenText($0.id), probability: $0.probability) } } },
            nLayers: nL, nHeads: h, patterns: heads.map(\.pattern),
            headScores: HeadPattern.allCases.compactMap { k in scores[k].map { (k.rawValue, $0.scalars) } },
            attributionTarget: target, componentLabels: dla.componentLabels, components: dla.components,
            headAttribution: dla.heads.scalars)
        let html = try Report.prompt(data).html
        try writeFile(Data(html.utf8), to: out)
        print(String(format: "wrote %@ (%.2f MB): %d tokens, %d layers × %d heads; top prediction %@ (%.3f)",
                     out, Double(html.utf8.count) / 1e6, tokens.count, nL, h, shown(loaded.tokenText(predictions[0].id)), predictions[0].probability))
    }
}
