import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct NeuronTests {
    @Test func cosinesValuesAndExamplesFollowTheirDefinitions() throws {
        let model = try InterpFixtures.model()
        let cos = try model.neuronInputOutputCosines(layer: 1)
        #expect(cos.count == 128 && cos.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
        // Neuron 5 by hand.
        let b = model.weights.blocks[1]
        let input = (0..<32).map { b.wIn.scalars[$0 * 128 + 5] }, output = (0..<32).map { b.wOut.scalars[5 * 32 + $0] }
        let dot = zip(input, output).map(*).reduce(0, +)
        let want = dot / (input.map { $0 * $0 }.reduce(0, +).squareRoot() * output.map { $0 * $0 }.reduce(0, +).squareRoot())
        #expect(abs(cos[5] - want) < 1e-5)

        let values = try model.neuronValues(layer: 1, neurons: [5], k: 3)
        let logits = try Tensor(unchecked: [1, 32], output).matmul(model.weights.wU)   // processed: no final-norm weight left
        let order = logits.scalars.indices.sorted { logits.scalars[$0] > logits.scalars[$1] }
        #expect(values[0].promoted.map(\.id) == Array(order.prefix(3)))
        #expect(values[0].suppressed.map(\.id) == Array(order.suffix(3).reversed()))

        let tokens = try InterpFixtures.meta().repeated + InterpFixtures.meta().clean   // 26 tokens
        let examples = try model.maxActivatingExamples(layer: 1, neurons: [5, 7], tokens: tokens, window: 10, k: 3, context: 2)
        // Windows of 10 restart the context, so the brute force runs the same windows.
        var all: [(Float, Int)] = []
        for s in stride(from: 0, to: tokens.count, by: 10) {
            let chunk = Array(tokens[s..<min(s + 10, tokens.count)])
            let acts = try model.neuronActivations(layer: 1, tokens: chunk)
            for p in 0..<chunk.count { all.append((acts.scalars[p * 128 + 5], s + p)) }
        }
        all.sort { $0.0 > $1.0 }
        #expect(examples[5]?.map(\.position) == all.prefix(3).map(\.1))
        let first = try #require(examples[5]?.first)
        #expect(first.context[first.focus] == tokens[first.position])
    }

    @Test func contextsOfDifferentLengthsRunAsOneBatch() throws {
        let fixtures = [(try InterpFixtures.model(), try InterpFixtures.meta()), (try GQAFixtures.model(), try GQAFixtures.meta())]
        for (model, meta) in fixtures {
            let tokens = meta.repeated + meta.clean
            let contexts = [Array(tokens[0..<9]), Array(tokens[3..<20]), [], Array(tokens[20..<22])]
            let d = model.config.dMLP, neuron = d / 3
            let batched = try model.neuronActivations(layer: 1, neuron: neuron, contexts: contexts)
            #expect(batched.map(\.count) == contexts.map(\.count))
            // Each equals the context run alone (the padding after a context does not reach it).
            for (c, column) in zip(contexts, batched) where !c.isEmpty {
                let alone = try model.neuronActivations(layer: 1, tokens: c)
                let want = (0..<c.count).map { alone.scalars[$0 * d + neuron] }
                #expect(zip(column, want).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(model.config.architecture) \(c.count) tokens")
            }
        }
        #expect(throws: InterpError.self) { try InterpFixtures.model().neuronActivations(layer: 1, neuron: 128, contexts: [[1, 2]]) }
    }

    @Test func outOfRange() throws {
        let model = try InterpFixtures.model()
        #expect(throws: InterpError.self) { try model.neuronInputOutputCosines(layer: 2) }
        #expect(throws: InterpError.self) { try model.neuronValues(layer: 0, neurons: [128]) }
        #expect(throws: InterpError.self) { try model.maxActivatingExamples(layer: 0, neurons: [1], tokens: [1, 2], window: 0) }
    }
}
