// The API behind the explorer's newer views: a token resolved as the analyses resolve it (with the CLI's
// caution), direct logit attribution, every head's pattern at once, and the request log — each checked
// against the library called directly on the same model.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeFormats
import LoupeStore
@testable import LoupeServer
import Testing

/// Equal up to the summation order of threaded kernels (suites run in parallel and share BLAS's thread count).
private func close(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { Swift.abs($0 - $1) <= 1e-4 * max(1, Swift.abs($1)) }
}

@Suite struct ExplorerViewsAPITests {
    static let prompt = ExplorerAPITests.prompt

    @Test func aTokenIsResolvedWithTheCaution() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let spaced = try await s.post("/api/token", ["model": "gpt2-tiny", "text": " Mary"]).decode(TokenResponse.self)
        #expect(spaced.token.id == (try loaded.model.singleToken(" Mary")) && spaced.token.text == " Mary" && spaced.caution == nil)
        // "Mary" without its space is another token, and a rarer one: the page shows the CLI's caution.
        let bare = try await s.post("/api/token", ["model": "gpt2-tiny", "text": "Mary"]).decode(TokenResponse.self)
        #expect(bare.token.id == (try loaded.model.singleToken("Mary")) && bare.token.id != spaced.token.id)
        #expect(bare.caution == loaded.model.tokenCaution("Mary") && bare.caution?.contains("\" Mary\"") == true, "\(bare.caution ?? "none")")
        // An id is a token too; several tokens are an error that says so.
        let byID = try await s.post("/api/token", ["model": "gpt2-tiny", "text": "\(spaced.token.id)"]).decode(TokenResponse.self)
        #expect(byID.token == spaced.token)
        let two = try await s.post("/api/token", ["model": "gpt2-tiny", "text": " Mary Jane Watson"])
        #expect(two.status == 422 && two.error.contains("'text'") && two.error.contains("tokens"), "\(two.status) \(two.error)")
        #expect(try await s.post("/api/token", ["model": "gpt2-tiny"]).status == 400)
    }

    @Test func attributionMatchesTheLibrary() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let a = try loaded.model.singleToken(" Mary"), w = try loaded.model.singleToken(" John")
        let expected = try loaded.model.directLogitAttribution(tokens: ids, answer: a, wrong: w, position: nil)
        let reply = try await s.post("/api/attribute", ["model": "gpt2-tiny", "prompt": Self.prompt, "answer": " Mary", "wrong": " John"])
        #expect(reply.status == 200, "\(reply.error)")
        let r = try reply.decode(AttributeResponse.self)
        #expect(r.answer.id == a && r.wrong?.id == w && r.position == ids.count - 1)
        #expect(close(r.heads.flatMap { $0 }, expected.heads.scalars))
        #expect(r.heads.count == loaded.model.config.nLayers && r.heads[0].count == loaded.model.config.nHeads)
        #expect(r.components.map(\.label) == expected.componentLabels && close(r.components.map(\.value), expected.components))
        // Another position reads another row.
        let earlier = try await s.post("/api/attribute", ["model": "gpt2-tiny", "prompt": Self.prompt, "answer": " Mary", "position": 3])
            .decode(AttributeResponse.self)
        let atThree = try loaded.model.directLogitAttribution(tokens: ids, answer: a, position: 3)
        #expect(earlier.position == 3 && close(earlier.heads.flatMap { $0 }, atThree.heads.scalars) && earlier.wrong == nil)
        let bad = try await s.post("/api/attribute", ["model": "gpt2-tiny", "prompt": Self.prompt, "answer": " Mary", "position": 99])
        #expect(bad.status == 422 && bad.error.contains("'position'"), "\(bad.error)")
    }

    @Test func everyHeadsPatternComesWithAll() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let heads = try loaded.model.attentionAnalysis(tokens: ids)
        let r = try await s.post("/api/attention", ["model": "gpt2-tiny", "prompt": Self.prompt, "all": true]).decode(AttentionResponse.self)
        let patterns = try #require(r.patterns)
        let nH = loaded.model.config.nHeads
        #expect(patterns.count == loaded.model.config.nLayers * nH)
        for h in heads { #expect(close(patterns[h.layer * nH + h.head].flatMap { $0 }, h.pattern), "L\(h.layer)H\(h.head)") }
        let without = try await s.post("/api/attention", ["model": "gpt2-tiny", "prompt": Self.prompt]).decode(AttentionResponse.self)
        #expect(without.patterns == nil)
    }

    @Test func requestsAreLoggedWithoutTheirQueries() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        _ = try await s.post("/api/predict", ["model": "gpt2-tiny", "prompt": "Hello"])
        _ = try await s.post("/api/predict", ["model": "no-such-model", "prompt": "Hello"])
        _ = try await s.get("/api/jobs/nothing?wait=1")
        let log = try await s.get("/api/requests")
        #expect(log.status == 200)
        let entries = try JSONDecoder().decode([String: [LoggedRequest]].self, from: log.body)["requests"] ?? []
        // Newest first: the jobs lookup (404, its query left out), the unknown model (404), the prediction (200).
        #expect(entries.count >= 3)
        let (jobs, unknown, predict) = (entries[0], entries[1], entries[2])
        #expect(jobs.method == "GET" && jobs.path == "/api/jobs/nothing" && jobs.status == 404, "\(jobs)")
        #expect(unknown.method == "POST" && unknown.path == "/api/predict" && unknown.status == 404, "\(unknown)")
        #expect(predict.path == "/api/predict" && predict.status == 200 && predict.milliseconds >= 0, "\(predict)")
        #expect(ISO8601DateFormatter().date(from: predict.time) != nil)
    }
}

/// Causal tracing and path patching as jobs: each result equals the library's on the same inputs.
@Suite struct ExplorerJobViewsTests {
    func finished(_ s: TestServer, _ path: String, _ body: [String: Any]) async throws -> JobStatus {
        let submitted = try await s.post(path, body)
        #expect(submitted.status == 202, "\(submitted.error)")
        var status = try submitted.decode(JobStatus.self)
        while status.state == "queued" || status.state == "running" {
            status = try await s.get("/api/jobs/\(status.id)?wait=1").decode(JobStatus.self)
        }
        return status
    }

    @Test func tracingMatchesTheLibrary() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let prompt = "The Eiffel Tower is located in the city of"
        let ids = try loaded.requireTokenizer().encodeForModel(prompt)
        let subject = try loaded.model.subjectPositions("Eiffel Tower", in: prompt, tokens: ids)
        // The span is exactly the subject's tokens: they decode to it, with the space before it.
        #expect(try loaded.requireTokenizer().decode(Array(ids[subject])) == " Eiffel Tower" && subject.lowerBound == 1, "\(subject)")
        let paris = try loaded.model.singleToken(" Paris")
        let expected = try loaded.model.causalTrace(tokens: ids, subject: subject, answer: paris, kind: .mlp, window: 2, samples: 2, seed: 7)
        let status = try await finished(s, "/api/trace", ["model": "gpt2-tiny", "prompt": prompt, "subject": "Eiffel Tower", "answer": " Paris",
                                                          "kind": "mlp", "window": 2, "samples": 2, "seed": 7])
        #expect(status.kind == "trace" && status.state == "done", "\(status.error ?? "")")
        let t = try #require(status.trace)
        #expect(t.subject == Array(subject) && t.answer.id == paris && t.kind == "mlp" && t.window == 2 && t.samples == 2)
        #expect(close([t.clean, t.corrupted], [expected.cleanProbability, expected.corruptedProbability]))
        #expect(close(t.restored.flatMap { $0 }, expected.restored.scalars))
        // The page sends no window: on a model of 2 layers the default is every layer, not ROME's 10.
        let plain = try await finished(s, "/api/trace", ["model": "gpt2-tiny", "prompt": prompt, "subject": "Eiffel Tower", "answer": " Paris",
                                                         "kind": "attn", "samples": 1])
        let expectedAttn = try loaded.model.causalTrace(tokens: ids, subject: subject, answer: paris, kind: .attn, window: 2, samples: 1)
        #expect(plain.state == "done" && plain.trace?.window == 2, "\(plain.error ?? "")")
        #expect(close(plain.trace?.restored.flatMap { $0 } ?? [], expectedAttn.restored.scalars))
        // A subject that is not in the prompt is refused when the job is asked for.
        let bad = try await s.post("/api/trace", ["model": "gpt2-tiny", "prompt": prompt, "subject": "Louvre", "answer": " Paris"])
        #expect(bad.status == 422 && bad.error.contains("'subject'"), "\(bad.error)")
    }

    @Test func pathPatchingMatchesTheLibrary() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try ExplorerAPITests.model()
        let clean = ExplorerAPITests.prompt, corrupt = clean.replacingOccurrences(of: "John gave", with: "Mary gave")
        let tokenizer = try loaded.requireTokenizer()
        let metric = PatchMetric.logitDifference(answer: try loaded.model.singleToken(" Mary"), wrong: try loaded.model.singleToken(" John"))
        for receiver in ["logits", "1:0,2:q"] {
            let expected = try loaded.model.pathPatch(clean: tokenizer.encodeForModel(clean), corrupted: tokenizer.encodeForModel(corrupt),
                                                      receiver: try PathReceiver(parsing: receiver), metric: metric)
            let status = try await finished(s, "/api/path-patch", ["model": "gpt2-tiny", "clean": clean, "corrupt": corrupt,
                                                                   "answer": " Mary", "wrong": " John", "receiver": receiver])
            let r = try #require(status.pathPatch, "\(status.error ?? "")")
            #expect(status.kind == "path-patch" && r.receiver == receiver)
            #expect(close(r.values.flatMap { $0 }, expected.values.scalars), "\(receiver): \(zip(r.values.flatMap { $0 }, expected.values.scalars).map { Swift.abs($0 - $1) }.max() ?? 0)")
            #expect(close([r.clean, r.corrupted], [expected.clean, expected.corrupted]))
            // Normalized values divide by clean − corrupted (1e-4 for this receiver on the tiny model): compare
            // them on the metric's scale.
            let scale = Swift.abs(expected.clean - expected.corrupted)
            #expect(zip(r.normalized.flatMap { $0 }, expected.normalized.scalars).allSatisfy { Swift.abs($0 - $1) * scale <= 1e-5 }, "\(receiver)")
        }
        let bad = try await s.post("/api/path-patch", ["model": "gpt2-tiny", "clean": clean, "corrupt": corrupt, "answer": " Mary", "wrong": " John",
                                                       "receiver": "1:9:q"])
        #expect(bad.status == 422 && bad.error.contains("head 9"), "\(bad.error)")
        let uneven = try await s.post("/api/path-patch", ["model": "gpt2-tiny", "clean": clean, "corrupt": "Hello", "answer": " Mary", "wrong": " John"])
        #expect(uneven.status == 422 && uneven.error.contains("one length"), "\(uneven.error)")
    }
}

/// The neuron page: its examples are the index's, and each context is re-run alone to show the neuron's
/// activation on every token (checked against the cached mlp.hook_post of a hooked run of that context).
@Suite struct NeuronPageTests {
    @Test func examplesComeFromTheIndexWithEveryTokensActivation() async throws {
        let loaded = try ExplorerAPITests.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-neuron-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("l1.sqlite").path
        let tokens = (0..<48).map { ($0 * 7919 + 3) % loaded.model.config.dVocab }
        let index = try NeuronExampleIndex(path: path, model: loaded.model, layer: 1, corpus: CorpusIdentity(digest: "page", documents: 1),
                                           k: 4, context: 3, window: 16)
        try loaded.model.buildNeuronIndex(index, tokens: tokens)
        // An index for another layer is served too, and must not be used for layer 1.
        let other = dir.appendingPathComponent("l0.sqlite").path
        try loaded.model.buildNeuronIndex(try NeuronExampleIndex(path: other, model: loaded.model, layer: 0,
                                                                 corpus: CorpusIdentity(digest: "page", documents: 1), k: 4, context: 3, window: 16),
                                          tokens: tokens)
        let s = try await TestServer.start(neuronIndexes: [other, path])
        defer { s.stop() }
        let neuron = 17
        let reply = try await s.post("/api/neuron", ["model": "gpt2-tiny", "layer": 1, "neuron": neuron, "topK": 3])
        #expect(reply.status == 200, "\(reply.error)")
        let r = try reply.decode(NeuronResponse.self)
        let stored = try NeuronExampleIndex(openExisting: path).examples(neuron: neuron)
        #expect(r.index == "l1.sqlite" && r.examples.count == stored.count && stored.count == 4)
        for (e, s) in zip(r.examples, stored) {
            #expect(e.activation == s.activation && e.document == s.document && e.position == s.position && e.focus == s.focus)
            #expect(e.tokens.map(\.id) == s.context && e.activations.count == s.context.count)
            let (_, cache) = try loaded.model.runWithCache(.tokens([s.context]), select: .names([.mlpPost(1)]))
            let post = try #require(cache[.mlpPost(1)])   // [1, pos, d_mlp]
            let m = loaded.model.config.dMLP
            let expected = (0..<s.context.count).map { post.scalars[$0 * m + neuron] }
            #expect(zip(e.activations, expected).allSatisfy { Swift.abs($0 - $1) < 1e-5 }, "\(e.activations) vs \(expected)")
            // The stored activation had the whole window before it; alone, the context gives a nearby value.
            #expect(Swift.abs(e.activations[e.focus] - s.activation) < 0.05)
        }
        let value = try loaded.model.neuronValues(layer: 1, neurons: [neuron], k: 3)[0]
        #expect(r.promoted.map(\.id) == value.promoted.map(\.id) && r.suppressed.map(\.id) == value.suppressed.map(\.id))
        #expect(r.inputOutputCosine == (try loaded.model.neuronInputOutputCosines(layer: 1))[neuron])
        let h = try #require(r.histogram)
        #expect(h.counts.reduce(0, +) == r.examples.map(\.tokens.count).reduce(0, +) && h.counts.count == 20)
        #expect(h.lower == r.examples.flatMap(\.activations).min() && h.upper == r.examples.flatMap(\.activations).max())
        // A neuron out of range is a 422 that names the field.
        let bad = try await s.post("/api/neuron", ["model": "gpt2-tiny", "layer": 1, "neuron": loaded.model.config.dMLP])
        #expect(bad.status == 422 && bad.error.contains("'neuron'"), "\(bad.error)")
        // Without a served index for the layer the page still shows what the neuron writes.
        let plain = try await TestServer.start()
        defer { plain.stop() }
        let bare = try await plain.post("/api/neuron", ["model": "gpt2-tiny", "layer": 1, "neuron": neuron]).decode(NeuronResponse.self)
        #expect(bare.index == nil && bare.examples.isEmpty && bare.histogram == nil && bare.promoted.count == 10)
    }
}
