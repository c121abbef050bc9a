import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct HeadDetectionTests {
    /// Scores equal TransformerLens's `detect_head` for every pattern, in both measures.
    @Test(arguments: HeadPattern.allCases)
    func matchesTransformerLens(kind: HeadPattern) throws {
        let model = try InterpFixtures.model()
        let meta = try InterpFixtures.meta()
        let expected = try InterpFixtures.expected()
        try expectDetectHeadScores(model, tokens: meta.repeated, kind: kind, expected: expected)
        if kind == .induction {
            let excluded = try #require(try model.detectHeads(tokens: meta.repeated, patterns: [kind], excludeBOS: true,
                                                              excludeCurrentToken: true)[kind])
            #expect(excluded.maxAbsDifference(try expected.tensor("detect.induction_head.mul.exclude")) <= 1e-4)
        }
    }

    /// Detection patterns on a hand-checked sequence: A B A B B.
    @Test func patternsByDefinition() {
        let tokens = [7, 8, 7, 8, 8]
        func cells(_ p: [Float]) -> [[Int]] { (0..<25).filter { p[$0] == 1 }.map { [$0 / 5, $0 % 5] } }
        #expect(cells(HeadPattern.previousToken.pattern(tokens)) == [[1, 0], [2, 1], [3, 2], [4, 3]])
        #expect(cells(HeadPattern.duplicateToken.pattern(tokens)) == [[2, 0], [3, 1], [4, 1], [4, 3]])
        // Induction: after an earlier A (pos 0) comes pos 1; after earlier B's (1, 3) come 2 and 4.
        #expect(cells(HeadPattern.induction.pattern(tokens)) == [[2, 1], [3, 2], [4, 2], [4, 4]])
    }

    @Test func sequenceLengthLimits() throws {
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.self) { try model.detectHeads(tokens: [1]) }
        #expect(throws: InterpError.self) { try model.detectHeads(tokens: Array(repeating: 1, count: 64)) }
    }

    @Test func inductionTestShape() throws {
        let model = try InterpFixtures.model()
        let test = try model.inductionTest(length: 20, seed: 1)
        #expect(test.tokens.count == 40)
        #expect(Array(test.tokens[0..<20]) == Array(test.tokens[20..<40]))
        #expect(test.scores.shape == [2, 4])
        #expect(test.scores.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(throws: InterpError.self) { try model.inductionTest(length: 40) }
    }
}

@Suite struct AttentionAnalysisTests {
    @Test func summariesFollowFromThePattern() throws {
        let model = try InterpFixtures.model()
        let tokens = try InterpFixtures.meta().clean
        let heads = try model.attentionAnalysis(tokens: tokens)
        #expect(heads.count == 8)
        let (_, cache) = try model.runWithCache(.tokens([tokens]), select: .names([.pattern(1)]))
        let pattern = try #require(cache[.pattern(1)])
        let h = try #require(heads.first { $0.layer == 1 && $0.head == 2 })
        let T = tokens.count
        #expect(h.pattern == Array(pattern.scalars[(2 * T * T)..<(3 * T * T)]))
        let first = (0..<T).map { h.pattern[$0 * T] }.reduce(0, +) / Float(T)
        #expect(abs(h.toFirst - first) < 1e-6)
        // Value-weighted rows are distributions, zero wherever the pattern is zero (causality).
        for q in 0..<T {
            let row = h.valueWeighted[(q * T)..<((q + 1) * T)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-5)
            for k in (q + 1)..<T where k < T { #expect(row[row.startIndex + k] == 0) }
        }
        #expect(heads.allSatisfy { $0.entropy >= 0 && $0.entropy <= log(Float(T)) + 1e-4 })
    }
}

/// `detectHeads` in both measures (mul, abs) equals TransformerLens's `detect_head` scores for `kind`, stored in
/// an interp fixture as `detect.<tl name>.<measure>` ([2 layers, 4 heads]).
func expectDetectHeadScores(_ model: HookedTransformer, tokens: [Int], kind: HeadPattern, expected: SafetensorsFile) throws {
    let tlName = ["previous_token": "previous_token_head", "duplicate_token": "duplicate_token_head",
                  "induction": "induction_head"][kind.rawValue]!
    for measure in [HeadScoreMeasure.mul, .abs] {
        let scores = try #require(try model.detectHeads(tokens: tokens, patterns: [kind], measure: measure)[kind])
        let want = try expected.tensor("detect.\(tlName).\(measure.rawValue)")
        #expect(scores.shape == [2, 4])
        #expect(scores.maxAbsDifference(want) <= (measure == .abs ? 1.001e-3 : 1e-4),
                "\(kind) \(measure): \(scores.maxAbsDifference(want))")
    }
}
