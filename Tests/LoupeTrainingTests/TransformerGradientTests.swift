import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

enum TinyGPT2 {
    static let folder = GradFixtures.directory.appendingPathComponent("gpt2-tiny").path
    static func model() throws -> HookedTransformer { try ModelLoader.load(path: folder).model }

    struct Meta: Decodable {
        let tokens: [[Int]]
        let W_E_rows: [Int]
        let W_U_columns: [Int]
        let hooks: [String]
    }

    static func meta() throws -> Meta {
        try JSONDecoder().decode(Meta.self, from: Data(contentsOf: GradFixtures.directory.appendingPathComponent("grad-gpt2-tiny.json")))
    }
}

/// Next-token targets for a batch: each position predicts the next token; the last predicts nothing.
func nextTokenTargets(_ tokens: [[Int]]) -> [Int] {
    tokens.flatMap { row in Array(row.dropFirst()) + [-1] }
}

@Suite("Gradients through HookedTransformer equal TransformerLens's (tiny GPT-2, float64 reference)")
struct TransformerGradientTests {
    @Test func forwardOnTheTapeEqualsInference() throws {
        let model = try TinyGPT2.model()
        let tokens = try TinyGPT2.meta().tokens
        let tape = try model.differentiableRun(tokens)
        let plain = try model.run(tokens)
        #expect(tape.logits.value.shape == plain.shape)
        #expect(tape.logits.value.maxAbsDifference(plain) < 1e-4)
        // Hook points on the tape hold the values the inference cache holds.
        let (_, cache) = try model.runWithCache(.tokens(tokens), select: .names([.pattern(1), .mlpPost(0), .lnFinalScale]))
        let run = try model.differentiableRun(tokens, capture: [.pattern(1), .mlpPost(0), .lnFinalScale])
        for name in [HookName.pattern(1), .mlpPost(0), .lnFinalScale] {
            let a = try #require(run.activations[name]?.value), b = try #require(cache[name])
            #expect(a.shape == b.shape, "\(name)")
            #expect(a.maxAbsDifference(b) < 1e-5, "\(name)")
        }
    }

    @Test func lossParameterAndHookGradientsMatchTransformerLens() throws {
        let model = try TinyGPT2.model()
        let meta = try TinyGPT2.meta()
        let expected = try SafetensorsFile(path: GradFixtures.directory.appendingPathComponent("grad-gpt2-tiny.safetensors").path)
        let params = model.parameterVariables(trainable: true)
        let hooks = try meta.hooks.map { try HookName(parsing: $0) }
        let run = try HookedTransformer.differentiableForward(config: model.config, parameters: params, tokens: meta.tokens,
                                                              capture: Set(hooks))
        let loss = try run.logits.crossEntropy(targets: nextTokenTargets(meta.tokens))
        #expect(abs(loss.value.scalars[0] - (try expected.tensor("loss").scalars[0])) < 1e-4)
        try loss.backward()

        var checked = 0
        for (name, v) in params {
            var grad = v.grad
            let d = model.config.dModel
            if name == "embed.W_E" {
                grad = Tensor(unchecked: [meta.W_E_rows.count, d], meta.W_E_rows.flatMap { Array(grad.scalars[($0 * d)..<(($0 + 1) * d)]) })
            } else if name == "unembed.W_U" {
                let v = model.config.dVocab
                grad = Tensor(unchecked: [d, meta.W_U_columns.count],
                              (0..<d).flatMap { i in meta.W_U_columns.map { grad.scalars[i * v + $0] } })
            } else if name == "unembed.b_U" {
                grad = Tensor(meta.W_U_columns.map { grad.scalars[$0] })
            }
            let want = try expected.tensor("param." + name)
            #expect(grad.shape == want.shape, "\(name) shape")
            let err = relativeError(grad, want)
            #expect(err < 2e-4, "\(name): relative error \(err)")
            checked += 1
        }
        #expect(checked == model.weights.namedTensors.count)
        for (raw, name) in zip(meta.hooks, hooks) {
            let got = try #require(run.activations[name]).grad
            let want = try expected.tensor("hook." + raw)
            #expect(got.count == want.count, "\(raw) size")
            let err = relativeError(try got.reshaped(want.shape), want)
            #expect(err < 1e-4, "\(raw): relative error \(err)")
        }
    }

    /// A Llama-family model (rotary embeddings, grouped-query attention, RMSNorm, gated SiLU MLP) on the tape.
    @Test func llamaForwardOnTheTapeEqualsInference() throws {
        let model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("llama-tiny").path).model
        let tokens = [[1, 7, 42, 3, 19, 7, 42]]
        let run = try model.differentiableRun(tokens, capture: [.rotK(1), .z(0)])
        let plain = try model.run(tokens)
        #expect(run.logits.value.maxAbsDifference(plain) < 1e-4)
        let (_, cache) = try model.runWithCache(.tokens(tokens), select: .names([.rotK(1)]))
        #expect(try #require(run.activations[.rotK(1)]).value.maxAbsDifference(try #require(cache[.rotK(1)])) < 1e-5)
        // A gradient at a hook point before the rotation: equal to the slope of the loss along it.
        let targets = nextTokenTargets(tokens)
        try run.logits.crossEntropy(targets: targets).backward()
        let z = try #require(run.activations[.z(0)])
        let direction = z.grad
        func loss(_ step: Float) throws -> Float {
            let shift: GradientHookFunction = { x, _ in x = Variable(try x.value + direction * step) }
            return try model.differentiableRun(tokens, hooks: [.z(0): shift]).logits.crossEntropy(targets: targets).value.scalars[0]
        }
        let slope = (try loss(1e-2) - loss(-1e-2)) / 2e-2
        let expected = direction.scalars.reduce(0) { $0 + $1 * $1 }
        let gap = abs(slope - expected)
        #expect(gap < 1e-3 + 1e-2 * expected, "slope \(slope) vs |grad|² \(expected)")
    }

    @Test func hooksOnTheTapeSteerAndRefuseShapeChanges() throws {
        let model = try TinyGPT2.model()
        let tokens = [[5, 17, 900, 3]]
        // A zero-ablation of layer 0's attention output on the tape equals the inference hook's.
        let zero: GradientHookFunction = { x, _ in x = Variable(Tensor(zeros: x.shape)) }
        let tape = try model.differentiableRun(tokens, hooks: [.attnOut(0): zero])
        let plain = try model.run(.tokens(tokens), hooks: Hooks([(.attnOut(0), Hooks.zeroAblate)]))
        #expect(tape.logits.value.maxAbsDifference(plain) < 1e-4)
        #expect(tape.logits.value.maxAbsDifference(try model.run(tokens)) > 1e-3)

        let bad: GradientHookFunction = { x, _ in x = Variable(Tensor(zeros: [1])) }
        #expect(throws: HookError.self) { try model.differentiableRun(tokens, hooks: [.z(1): bad]) }
        #expect(throws: HookError.self) { try model.differentiableRun(tokens, capture: [.z(7)]) }
        #expect(throws: ModelError.self) { try model.differentiableRun([[model.config.dVocab]]) }
    }
}
