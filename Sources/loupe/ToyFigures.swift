// Pictures of the toy models' analyses (LoupeTraining computes them; drawing is the CLI's business).

import LoupeRender
import LoupeTraining

private func labels(_ n: Int) -> [String] { (0..<n).map(String.init) }

extension MaxOfListAnalysis {
    func heatmaps() throws -> [(String, Heatmap)] {
        [("max-qk.svg", try Heatmap(values: qkFirstKey, rows: vocab, columns: vocab, rowLabels: labels(vocab).map { "q \($0)" },
                                    columnLabels: labels(vocab).map { "k \($0)" },
                                    title: "Max of a list: QK scores, query at the last position, key at position 0")),
         ("max-ov.svg", try Heatmap(values: ov, rows: vocab, columns: vocab, rowLabels: labels(vocab).map { "attend \($0)" },
                                    columnLabels: labels(vocab).map { "logit \($0)" },
                                    title: "Max of a list: OV circuit W_E W_V W_O W_U (a diagonal copies)"))]
    }
}

extension ArithmeticAnalysis {
    func heatmaps(prefix: String) throws -> [(String, Heatmap)] {
        var out: [(String, Heatmap)] = []
        let shown = min(dMLP, 64)
        for p in 0..<positions {
            let w = effectiveWeights[p]
            let values = (0..<vocab).flatMap { t in (0..<shown).map { w[t * dMLP + $0] } }
            out.append(("\(prefix)-effective-weights-pos\(p).svg",
                        try Heatmap(values: values, rows: vocab, columns: shown, rowLabels: labels(vocab).map { "token \($0)" },
                                    columnLabels: labels(shown).map { "n\($0)" },
                                    title: "W_E W_V W_O W_in at position \(p) (first \(shown) neurons)")))
        }
        let top = Array(activeNeurons.prefix(32))
        if !top.isEmpty {
            out.append(("\(prefix)-neuron-curves.svg",
                        try Heatmap(values: top.flatMap { j in Array(curves[(j * tokens)..<((j + 1) * tokens)]) }, rows: top.count,
                                    columns: tokens, rowLabels: top.map { "n\($0)" }, columnLabels: labels(tokens),
                                    title: "Neuron activation vs input token at position \(varyingPosition)", scale: .sequential)))
        }
        return out
    }
}

extension InductionAnalysis {
    func heatmaps() throws -> [(String, Heatmap)] {
        let heads = (0..<nLayers).flatMap { l in (0..<nHeads).map { "\(l).\($0)" } }
        var out: [(String, Heatmap)] = [
            ("induction-head-scores.svg", try Heatmap(values: previousToken.scalars + induction.scalars, rows: 2, columns: heads.count,
                                                      rowLabels: ["previous token", "induction"], columnLabels: heads,
                                                      title: "Head scores (repeated random tokens)", scale: .sequential)),
        ]
        if nLayers >= 2 {
            let values = (0..<nHeads).flatMap { i in (0..<nHeads).map { j in kComposition.scalars[i * nLayers * nHeads + nHeads + j] } }
            out.append(("induction-k-composition.svg",
                        try Heatmap(values: values, rows: nHeads, columns: nHeads, rowLabels: (0..<nHeads).map { "0.\($0)" },
                                    columnLabels: (0..<nHeads).map { "1.\($0)" }, title: "K-composition, layer 0 → layer 1",
                                    scale: .sequential)))
        }
        return out
    }
}
