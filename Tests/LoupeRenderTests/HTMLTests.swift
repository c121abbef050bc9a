import Foundation
import LoupeRender
import Testing

/// The text of the JSON `<script>` with this id, parsed.
private func embedded(_ html: String, id: String) throws -> Any {
    let open = "<script type=\"application/json\" id=\"\(id)\">"
    let start = try #require(html.range(of: open))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    return try JSONSerialization.jsonObject(with: Data(html[start.upperBound..<end.lowerBound].utf8))
}

private let nasty = "</script><script>alert(\"x\")</script> & 'q'"

private func everyView() throws -> Report {
    let tokens = ["The", " cat", nasty]
    var report = Report(title: "all views <b>", metadata: [("model", "tiny & <small>")])
    let p: [Float] = [1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5]
    report.add(try AttentionPatternsView(title: "attention", tokens: tokens, headsPerRow: 2, patterns: [p, p, p, p]))
    let c = LogitLensView.Candidate.init
    report.add(try LogitLensView(title: "logit lens", layerLabels: ["0_pre", "final"], positionLabels: tokens,
                                 cells: [[[c("a", 0)], [c("b", 0.5)], [c(nasty, 1)]], [[c("x", 1), c("y", 0)], [c("z", 0.25)], [c("w", 0.75)]]]))
    report.add(try Heatmap(values: [-1, 0, 1, 2], rows: 2, columns: 2, rowLabels: ["L0", "L1"], columnLabels: ["H0", nasty], title: "patching"))
    report.add(try Heatmap(values: (0..<10_000).map { Float($0 % 13) }, rows: 100, columns: 100, rowLabels: (0..<100).map { "q\($0)" },
                           columnLabels: (0..<100).map { "k\($0)" }, title: "big QK circuit", scale: .sequential))
    report.add(try BarChart(title: "DLA", labels: ["embed", "0_attn_out", nasty], values: [1, -2, 0.5], note: "direct attribution"))
    report.add(NeuronActivationsView(title: "neurons", neurons: [
        .init(name: "L0N5", summary: "promotes \" Paris\"", text: try .init(tokens: tokens, activations: [0.1, -1, 2]),
              examples: [try .init(tokens: ["a", nasty, "c"], focus: 1, activation: 2)])]))
    report.add(try TrainingCurves(title: "training", series: [.init(name: "train", points: [(0, 3), (10, 2), (20, 1)]),
                                                              .init(name: "eval", points: [(0, 3.5), (20, 1.5)])]))
    report.add(try TableView(title: "predictions", header: ["rank", "token"], rows: [["1", nasty]]))
    return report
}

@Suite struct HTMLTests {
    @Test func noExternalReferencesAnywhere() throws {
        let html = try everyView().html
        for banned in ["http:", "https:", "<link", "@import", "url(", "fetch(", "XMLHttpRequest", "<script src", "<iframe", "//cdn"] {
            #expect(!html.contains(banned), "found \(banned)")
        }
        // Every src and href is inline data or an anchor in the page.
        let refs = try NSRegularExpression(pattern: "(?<![\\w-])(src|href)\\s*=\\s*\"([^\"]*)\"")
        let matches = refs.matches(in: html, range: NSRange(html.startIndex..., in: html))
        #expect(!matches.isEmpty)
        for m in matches {
            let value = String(html[try #require(Range(m.range(at: 2), in: html))])
            #expect(value.hasPrefix("data:image/png;base64,") || value.hasPrefix("#"), "reference \(value.prefix(40))")
        }
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<style>") && html.hasSuffix("</html>\n"))
    }

    @Test func userTextIsEscaped() throws {
        let html = try everyView().html
        #expect(!html.contains("<script>alert"))
        #expect(!html.contains("all views <b>") && html.contains("all views &lt;b&gt;") && html.contains("tiny &amp; &lt;small&gt;"))
        // The only script elements: the attention data and the page's own script.
        #expect(html.components(separatedBy: "<script").count - 1 == 2)
        #expect(html.contains("\\u003c/script\\u003e"))
        #expect(html.contains("&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"))
    }

    @Test func attentionDataRoundTrips() throws {
        let patterns: [[Float]] = [[1, 0, 0.25, 0.75], [0.5, 0.5, 0.1234, 0.8766]]
        let view = try AttentionPatternsView(title: "a", tokens: ["x", nasty], headsPerRow: 1, patterns: patterns, rowLabels: ["L4", "L5"])
        let html = Report.page(view).html
        let data = try #require(try embedded(html, id: "a-data") as? [String: Any])
        #expect(data["tokens"] as? [String] == ["x", nasty])
        #expect(data["names"] as? [String] == ["L4H0", "L5H0"])
        #expect(data["scale"] as? Int == 1000)
        let stored = try #require(data["patterns"] as? [[Int]])
        #expect(stored == patterns.map { $0.map { Int(($0 * 1000).rounded()) } })
        #expect(html.contains("class=\"attn\" data-src=\"a-data\""))
    }

    @Test func logitLensColoursAndTopK() throws {
        let c = LogitLensView.Candidate.init
        let view = try LogitLensView(title: "lens", layerLabels: ["0_pre"], positionLabels: ["A", "B"],
                                     cells: [[[c(" Paris", 1), c(" Rome", 0)], [c("x", 0)]]])
        let body = view.htmlBody(id: "l")
        #expect(body.contains("style=\"background:#2166ac;color:#fff\""))   // probability 1: the end of the scale, white text
        #expect(body.contains("style=\"background:#ffffff;color:#000\""))   // probability 0: white
        #expect(body.contains("data-tip=\"0_pre, position A&#10;1. &quot; Paris&quot;  1.000&#10;2. &quot; Rome&quot;  0.000\""))
        #expect(body.components(separatedBy: "<td class=\"c\"").count - 1 == 2)
    }

    @Test func heatmapTablesAndLargeHeatmapsAsImages() throws {
        let small = try Heatmap(values: [-2, 0, 2, 1], rows: 2, columns: 2, rowLabels: ["a", "b"], columnLabels: ["c", "d"], title: "t")
        let body = small.htmlBody(id: "h")
        #expect(body.components(separatedBy: "<td class=\"c\"").count - 1 == 4)
        #expect(body.contains("background:#2166ac\" data-tip=\"a × c&#10;-2\"") && body.contains("background:#b2182b"))
        let n = 80
        let big = try Heatmap(values: [Float](repeating: 1, count: n * n), rows: n, columns: n, rowLabels: (0..<n).map(String.init),
                              columnLabels: (0..<n).map(String.init), title: "big")
        let image = big.htmlBody(id: "b")
        let start = try #require(image.range(of: "base64,"))
        let end = try #require(image.range(of: "\"", range: start.upperBound..<image.endIndex))
        let png = try #require(Data(base64Encoded: String(image[start.upperBound..<end.lowerBound])))
        let decoded = try PNGImage.decode(png)
        #expect(decoded.width == big.rasterLayout.width && !image.contains("<td"))
    }

    @Test func barsShareOneAxis() throws {
        let bars = try BarChart(title: "b", labels: ["up", "down"], values: [3, -1])
        let body = bars.htmlBody(id: "b")
        // Zero at 25% of the track (range −1…3); the +3 bar spans 75%, the −1 bar 25% left of zero.
        #expect(body.contains("left:25.00%;width:75.00%;background:#b2182b"))
        #expect(body.contains("left:0.00%;width:25.00%;background:#2166ac"))
        #expect(body.components(separatedBy: "class=\"zero\" style=\"left:25.00%\"").count - 1 == 2)
    }

    @Test func neuronTextAndExamples() throws {
        let view = NeuronActivationsView(title: "n", neurons: [
            .init(name: "N1", text: try .init(tokens: ["a", "b"], activations: [-4, 2]),
                  examples: [try .init(tokens: ["x", "y"], focus: 1, activation: 4)])])
        let body = view.htmlBody(id: "n")
        #expect(body.contains("<span class=\"tok\" style=\"background:#2166ac;color:#fff\" data-tip=\"a: -4\">a</span>"))
        #expect(body.contains("<span class=\"tok focus\" style=\"background:#b2182b;color:#fff\" data-tip=\"y: 4\">y</span>"))
        #expect(body.contains("<span class=\"tok\">x</span>"))
    }

    @Test func trainingCurvesPlacePoints() throws {
        let curves = try TrainingCurves(title: "c", series: [.init(name: "a", points: [(0, 1), (100, 3)]), .init(name: "b", points: [(50, 2)])])
        let body = curves.htmlBody(id: "c")
        #expect(body.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(body.components(separatedBy: "<circle").count - 1 == 3)
        let first = curves.position(step: 0, value: 1), last = curves.position(step: 100, value: 3)
        #expect(first.x == 64 && last.x == 704 && first.y > last.y)
        #expect(body.contains("#1b9e77") && body.contains("#d95f02"))
        let log = try TrainingCurves(title: "l", series: [.init(name: "a", points: [(0, 1), (1, 100)])], logScale: true)
        #expect(abs(log.position(step: 0, value: 10).y - (log.position(step: 0, value: 1).y + log.position(step: 0, value: 100).y) / 2) < 1e-9)
    }

    @Test func reportHasTableOfContentsWithUniqueAnchors() throws {
        var report = Report(title: "r")
        let map = try Heatmap(values: [1], rows: 1, columns: 1, rowLabels: ["a"], columnLabels: ["b"], title: "Head scores: induction")
        report.add(map); report.add(map)
        report.add(try BarChart(title: "DLA", labels: ["x"], values: [1]))
        #expect(report.sections.map(\.id) == ["head-scores-induction", "head-scores-induction-2", "dla"])
        let html = report.html
        for id in report.sections.map(\.id) {
            #expect(html.contains("<li><a href=\"#\(id)\">") && html.contains("<section id=\"\(id)\">"))
        }
        #expect(!Report.page(map).html.contains("class=\"toc\""))
    }

    @Test func badShapesThrow() {
        #expect(throws: RenderError.self) { try AttentionPatternsView(title: "", tokens: ["a", "b"], headsPerRow: 1, patterns: [[1, 0, 0]]) }
        #expect(throws: RenderError.self) { try AttentionPatternsView(title: "", tokens: ["a"], headsPerRow: 2, patterns: [[1]]) }
        #expect(throws: RenderError.self) { try AttentionPatternsView(title: "", tokens: ["a"], headsPerRow: 1, patterns: [[1]], rowLabels: ["x", "y"]) }
        #expect(throws: RenderError.self) { try LogitLensView(title: "", layerLabels: ["a"], positionLabels: ["p", "q"], cells: [[[.init(token: "t", probability: 1)]]]) }
        #expect(throws: RenderError.self) { try LogitLensView(title: "", layerLabels: ["a"], positionLabels: ["p"], cells: [[[]]]) }
        #expect(throws: RenderError.self) { try BarChart(title: "", labels: ["a"], values: [1, 2]) }
        #expect(throws: RenderError.self) { try BarChart(title: "", labels: [], values: []) }
        #expect(throws: RenderError.self) { try NeuronActivationsView.Text(tokens: ["a"], activations: []) }
        #expect(throws: RenderError.self) { try NeuronActivationsView.Example(tokens: ["a"], focus: 1, activation: 0) }
        #expect(throws: RenderError.self) { try TrainingCurves(title: "", series: []) }
        #expect(throws: RenderError.self) { try TrainingCurves(title: "", series: [.init(name: "a", points: [(0, .nan)])]) }
        #expect(throws: RenderError.self) { try TrainingCurves(title: "", series: [.init(name: "a", points: [(0, 0)])], logScale: true) }
        #expect(throws: RenderError.self) { try TableView(title: "", header: ["a"], rows: [["1", "2"]]) }
    }

    @Test func jsonTextEscapesForScripts() {
        let json = JSONText.object([("s", .string("</script>\u{2028}\"\\\n")), ("n", .numbers([1, 0.123456, .nan, -2.5e-7]))]).text
        #expect(json == "{\"s\":\"\\u003c/script\\u003e\\u2028\\\"\\\\\\n\",\"n\":[1,0.1235,null,-2.5e-07]}")
    }
}

@Suite struct PromptReportTests {
    func data(tokens: [String] = ["When", " Mary", " and"]) -> PromptReportData {
        let T = tokens.count, nL = 2, h = 3
        let uniform = (0..<(T * T)).map { i in Float(i % T <= i / T ? 1 : 0) / Float(i / T + 1) }   // causal, uniform
        let c = LogitLensView.Candidate.init
        return PromptReportData(
            model: "tiny", prompt: tokens.joined(), tokens: tokens,
            predictions: [.init(token: " John", probability: 0.5, logit: 3), .init(token: " the", probability: 0.1, logit: 1.4)],
            lensLabels: ["0_pre", "1_pre", "final_post"], lens: Array(repeating: Array(repeating: [c(" John", 0.5), c(" the", 0.1)], count: T), count: 3),
            nLayers: nL, nHeads: h, patterns: Array(repeating: uniform, count: nL * h),
            headScores: [("induction", [0, 0.1, 0.2, 0.3, 0.4, 0.9]), ("previous_token", [Float](repeating: 0.5, count: nL * h))],
            attributionTarget: "logit[\" John\"]", componentLabels: ["embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"],
            components: [0.1, -0.5, 1, 2, -0.25], headAttribution: [0, 1, -1, 2, 0, 0.5])
    }

    @Test func standardSectionsInOrder() throws {
        let report = try Report.prompt(data())
        #expect(report.sections.map(\.view.title) == [
            "Predictions", "Logit lens", "Attention patterns", "Head scores: induction", "Head scores: previous_token",
            "Direct logit attribution", "Direct logit attribution per head: logit[\" John\"]"])
        let html = report.html
        #expect(html.contains("<nav class=\"toc\">") && html.contains("<dt>model</dt><dd>tiny</dd>"))
        #expect(html.contains("<td>&quot; John&quot;</td><td>0.5000</td><td>3.000</td>"))
        let attention = try #require(try embedded(html, id: "attention-patterns-data") as? [String: Any])
        #expect((attention["patterns"] as? [[Int]])?.count == 6 && attention["heads"] as? Int == 3)
        #expect(!html.contains("http:") && !html.contains("https:"))
    }

    @Test func mismatchedPartsThrow() {
        var d = data()
        d.patterns = [[1]]
        #expect(throws: RenderError.self) { try Report.prompt(d) }
        d = data()
        d.headAttribution = [1, 2]
        #expect(throws: RenderError.self) { try Report.prompt(d) }
    }
}
