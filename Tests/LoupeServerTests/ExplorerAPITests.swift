import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
@testable import LoupeServer
import Testing

/// The JSON API over real HTTP, against the library called directly on the same model.
@Suite struct ExplorerAPITests {
    static let prompt = "When Mary and John went to the store, John gave a drink to"

    static func model() throws -> LoadedModel { try ModelLoader.load(path: TestServer.fixture) }

    @Test func healthModelsAndPage() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        #expect(try await s.get("/api/health").status == 200)
        let models = try await s.get("/api/models").decode(ModelsResponse.self)
        let tiny = try #require(models.models.first { $0.name == "gpt2-tiny" })
        #expect(tiny.available)
        #expect(models.limits.maxPromptTokens == 32)
        let page = try await s.get("/")
        #expect(page.status == 200)
        #expect(String(decoding: page.body, as: UTF8.self).contains("/static/explorer.js"))
        #expect(try await s.get("/static/explorer.js").status == 200)
        #expect(try await s.get("/static/explorer.css").status == 200)
        #expect(try await s.get("/static/explorer-draw.js").status == 200)
        #expect(try await s.get("/static/Package.swift").status == 404)
    }

    @Test func tokensAndPredictions() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let tokens = try await s.post("/api/tokens", ["model": "gpt2-tiny", "prompt": Self.prompt]).decode(TokensResponse.self)
        #expect(tokens.tokens.map(\.id) == ids)
        #expect(tokens.tokens.map(\.text).joined() == Self.prompt)

        let answer = try await s.post("/api/predict", ["model": "gpt2-tiny", "prompt": Self.prompt, "topK": 4])
        #expect(answer.status == 200, "\(answer.error)")
        let predict = try answer.decode(PredictResponse.self)
        let expected = try loaded.model.run([ids]).topPredictions(k: 4)
        #expect(predict.predictions.map(\.id) == expected.map(\.id))
        for (p, e) in zip(predict.predictions, expected) {
            #expect(abs(p.probability - e.probability) < 1e-6 && abs(p.logit - e.logit) < 1e-5)
        }
        // The same prompt as ids gives the same answer.
        let byIDs = try await s.post("/api/predict", ["model": "gpt2-tiny", "ids": ids, "topK": 4]).decode(PredictResponse.self)
        #expect(byIDs.predictions.map(\.id) == expected.map(\.id))
    }

    @Test func lensAttentionHeadsNeurons() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        let ids = try loaded.requireTokenizer().encodeForModel(Self.prompt)
        let (nL, nH, T) = (loaded.model.config.nLayers, loaded.model.config.nHeads, ids.count)

        let lens = try await s.post("/api/lens", ["model": "gpt2-tiny", "prompt": Self.prompt, "topK": 3, "target": " Mary"])
            .decode(LensResponse.self)
        let direct = try loaded.model.logitLens(tokens: ids)
        #expect(lens.cells.map(\.label) == direct.labels)
        #expect(lens.position == T - 1)
        #expect(lens.target?.text == " Mary")
        let last = try direct.summary(position: T - 1, topK: 3)
        #expect(lens.cells.map { $0.top.map(\.id) } == last.map { $0.top.map(\.id) })

        let attention = try await s.post("/api/attention", ["model": "gpt2-tiny", "prompt": Self.prompt, "layer": 1, "head": 2])
            .decode(AttentionResponse.self)
        #expect(attention.heads.count == nL * nH)
        let pattern = try #require(attention.selected).pattern
        #expect(pattern.count == T)
        for (q, row) in pattern.enumerated() {
            #expect(abs(row.reduce(0, +) - 1) < 1e-4, "query \(q) sums to \(row.reduce(0, +))")
            #expect(row[(q + 1)...].allSatisfy { $0 == 0 }, "query \(q) attends to a later key")
        }
        let headsDirect = try loaded.model.attentionAnalysis(tokens: ids)
        let one = try #require(headsDirect.first { $0.layer == 1 && $0.head == 2 })
        #expect(pattern.flatMap { $0 } == one.pattern)

        let heads = try await s.post("/api/heads", ["model": "gpt2-tiny", "prompt": Self.prompt]).decode(HeadsResponse.self)
        let scores = try loaded.model.detectHeads(tokens: ids)
        for kind in HeadPattern.allCases {
            let grid = try #require(heads.scores[kind.rawValue])
            #expect(grid.flatMap { $0 } == scores[kind]?.scalars)
        }
        let induction = try await s.post("/api/heads", ["model": "gpt2-tiny"]).decode(HeadsResponse.self)
        let test = try #require(induction.inductionTest)
        #expect(induction.tokens.count == 1 + 2 * test.length || induction.tokens.count == 2 * test.length)

        let neurons = try await s.post("/api/neurons", ["model": "gpt2-tiny", "prompt": Self.prompt, "layer": 1, "top": 5])
            .decode(NeuronsResponse.self)
        let acts = try loaded.model.neuronActivations(layer: 1, tokens: ids)   // [pos, d_mlp]
        let m = loaded.model.config.dMLP
        let maxima = (0..<m).map { n in (0..<T).map { acts.scalars[$0 * m + n] }.max()! }
        let best = maxima.indices.sorted { maxima[$0] > maxima[$1] }.prefix(5)
        #expect(neurons.neurons.map(\.neuron) == Array(best))
        for n in neurons.neurons {
            #expect(n.activations == (0..<T).map { acts.scalars[$0 * m + n.neuron] })
            #expect(n.activations[n.position] == n.activation)
        }
    }

    @Test func patchingJob() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        let corrupt = "When Mary and John went to the store, Mary gave a drink to"
        let submitted = try await s.post("/api/jobs", ["model": "gpt2-tiny", "clean": Self.prompt, "corrupt": corrupt,
                                                       "answer": " Mary", "wrong": " John", "hook": "attn_out"])
        #expect(submitted.status == 202, "\(submitted.error)")
        let id = try submitted.decode(JobStatus.self).id
        var status = try submitted.decode(JobStatus.self)
        for _ in 0..<60 where status.state == "queued" || status.state == "running" {
            status = try await s.get("/api/jobs/\(id)?wait=1").decode(JobStatus.self)
        }
        #expect(status.state == "done", "\(status.error ?? "")")
        #expect(status.total > 0 && status.done == status.total)
        let result = try #require(status.patch)
        let tok = try loaded.requireTokenizer()
        let direct = try loaded.model.activationPatch(
            clean: tok.encodeForModel(Self.prompt), corrupted: tok.encodeForModel(corrupt), target: .attnOut,
            metric: .logitDifference(answer: try #require(tok.encode(" Mary").first), wrong: try #require(tok.encode(" John").first)))
        #expect(result.shape == direct.values.shape)
        // Equal up to summation order: suites run in parallel and share BLAS's thread count, which patching sets.
        let close = { (a: Float, b: Float) in abs(a - b) <= 1e-5 * max(1, abs(b)) }
        #expect(result.values.count == direct.values.scalars.count && zip(result.values, direct.values.scalars).allSatisfy(close))
        #expect(close(result.clean, direct.clean) && close(result.corrupted, direct.corrupted))
        let list = try await s.get("/api/jobs")
        #expect((list.json["jobs"] as? [Any])?.count == 1)
    }

    /// A job over a dataset of pairs of different lengths, each scored at its own position: the means of the
    /// library's single-pair results; a by-position hook over such pairs, and a bad pair, are refused at submission.
    @Test func patchingJobOverPairs() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        let tok = try loaded.requireTokenizer()
        let pairs: [[String: Any]] = [
            ["clean": Self.prompt, "corrupt": "When Mary and John went to the store, Mary gave a drink to", "answer": " Mary", "wrong": " John"],
            ["clean": "Then Anne and Tom sat down. Tom passed the salt to Anne", "corrupt": "Then Anne and Tom sat down. Anne passed the salt to Anne",
             "answer": " Anne", "wrong": " Tom", "position": -2],
        ]
        let submitted = try await s.post("/api/jobs", ["model": "gpt2-tiny", "pairs": pairs, "hook": "z"])
        #expect(submitted.status == 202, "\(submitted.error)")
        var status = try submitted.decode(JobStatus.self)
        for _ in 0..<60 where status.state == "queued" || status.state == "running" {
            status = try await s.get("/api/jobs/\(status.id)?wait=1").decode(JobStatus.self)
        }
        #expect(status.state == "done", "\(status.error ?? "")")
        let result = try #require(status.patch)
        #expect(result.pairs == 2)
        let mary = try #require(tok.encode(" Mary").first), john = try #require(tok.encode(" John").first)
        let anne = try #require(tok.encode(" Anne").first), tom = try #require(tok.encode(" Tom").first)
        let second = tok.encodeForModel(pairs[1]["clean"] as! String), secondCorrupt = tok.encodeForModel(pairs[1]["corrupt"] as! String)
        let a = try loaded.model.activationPatch(clean: tok.encodeForModel(Self.prompt), corrupted: tok.encodeForModel(pairs[0]["corrupt"] as! String),
                                                 target: .headOutAllPos, metric: .logitDifference(answer: mary, wrong: john))
        let b = try loaded.model.activationPatch(clean: Array(second.dropLast()), corrupted: Array(secondCorrupt.dropLast()),
                                                 target: .headOutAllPos, metric: .logitDifference(answer: anne, wrong: tom))
        for j in 0..<result.values.count { #expect(abs(result.values[j] - (a.values.scalars[j] + b.values.scalars[j]) / 2) < 1e-4) }
        #expect(abs(result.clean - (a.clean + b.clean) / 2) < 1e-4)

        let byPosition = try await s.post("/api/jobs", ["model": "gpt2-tiny", "pairs": pairs, "hook": "resid_pre"])
        #expect(byPosition.status == 422 && byPosition.error.contains("one length"), "\(byPosition.error)")
        let badPair = try await s.post("/api/jobs", ["model": "gpt2-tiny", "pairs": [["clean": "a b", "corrupt": "a b c", "answer": " Mary", "wrong": " John"]], "hook": "z"])
        #expect(badPair.status == 422 && badPair.error.contains("pairs[0]"), "\(badPair.error)")
        let both = try await s.post("/api/jobs", ["model": "gpt2-tiny", "pairs": pairs, "answer": " Mary", "hook": "z"])
        #expect(both.status == 422, "\(both.error)")
    }

    /// `POST /api/ablate`: zeroing a head equals the model with that head's rows of W_O removed; mean ablation
    /// over a dataset; bad input is a 4xx that names the field.
    @Test func ablateEndpoint() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        let tok = try loaded.requireTokenizer()
        let mary = try #require(tok.encode(" Mary").first), john = try #require(tok.encode(" John").first)
        let answer = try await s.post("/api/ablate", ["model": "gpt2-tiny", "prompt": Self.prompt, "answer": " Mary", "wrong": " John",
                                                       "hook": "blocks.1.attn.hook_z", "head": 2])
        #expect(answer.status == 200, "\(answer.error)")
        let r = try answer.decode(AblateResponse.self)
        // The same knockout by a weight edit.
        let m = loaded.model, c = m.config
        var w = m.weights
        var wO = w.blocks[1].wO.scalars
        for i in 0..<c.dHead { for j in 0..<c.dModel { wO[(2 * c.dHead + i) * c.dModel + j] = 0 } }
        w.blocks[1].wO = Tensor(unchecked: w.blocks[1].wO.shape, wO)
        let edited = try HookedTransformer(config: c, weights: w)
        let ids = tok.encodeForModel(Self.prompt), v = c.dVocab, last = ids.count - 1
        func diff(_ model: HookedTransformer) throws -> Float {
            let logits = try model.run(.tokens([ids])).scalars
            return logits[last * v + mary] - logits[last * v + john]
        }
        #expect(abs(r.meanClean - (try diff(m))) < 1e-4)
        #expect(abs(r.meanAblated - (try diff(edited))) < 1e-4)
        #expect(abs(r.meanAblated - r.meanClean) > 1e-3)
        #expect(r.kind == "zero" && r.hook == "blocks.1.attn.hook_z" && r.clean.count == 1)

        let examples: [[String: Any]] = [["prompt": Self.prompt, "answer": " Mary", "wrong": " John"],
                                         ["prompt": "Then Anne and Tom sat down. Tom passed the salt to", "answer": " Anne", "wrong": " Tom"]]
        let mean = try await s.post("/api/ablate", ["model": "gpt2-tiny", "examples": examples, "hook": "blocks.0.hook_mlp_out", "kind": "mean"])
        #expect(mean.status == 200, "\(mean.error)")
        let means = try mean.decode(AblateResponse.self)
        #expect(means.clean.count == 2 && means.ablated.count == 2)
        let library = try m.ablate(AblationSite(hook: .mlpOut(0)), kind: .mean,
                                   examples: [AblationExample(tokens: ids, metric: .logitDifference(answer: mary, wrong: john)),
                                              AblationExample(tokens: tok.encodeForModel(examples[1]["prompt"] as! String),
                                                              metric: .logitDifference(answer: try #require(tok.encode(" Anne").first), wrong: try #require(tok.encode(" Tom").first)))])
        for i in 0..<2 { #expect(abs(means.ablated[i] - library.ablated[i]) < 1e-4) }

        for (body, status, says) in [
            (["hook": "blocks.9.attn.hook_z"], 422, "hook"),
            (["hook": "blocks.1.attn.hook_zz"], 422, "hook"),
            (["hook": "blocks.1.attn.hook_z", "head": 7], 422, "head"),
            (["hook": "blocks.1.attn.hook_z", "kind": "sometimes"], 422, "kind"),
            (["hook": "blocks.1.attn.hook_z", "kind": "resample"], 422, "two prompts"),
            (["hook": "blocks.1.attn.hook_z", "metric": "normalized-logit-diff"], 422, "metric"),
        ] as [([String: Any], Int, String)] {
            var full: [String: Any] = ["model": "gpt2-tiny", "prompt": Self.prompt, "answer": " Mary", "wrong": " John"]
            full.merge(body) { $1 }
            let a = try await s.post("/api/ablate", full)
            #expect(Int(a.status) == status && a.error.contains(says), "\(body): \(a.status) \(a.error)")
        }
        let noAnswer = try await s.post("/api/ablate", ["model": "gpt2-tiny", "examples": [["prompt": "a b"]], "hook": "blocks.0.hook_mlp_out"])
        #expect(noAnswer.status == 400 && noAnswer.error.contains("answer"), "\(noAnswer.error)")
    }

    /// A queued job cancelled before it starts never runs; a second active job is refused (limit 1).
    @Test func cancelAndJobLimit() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        // Hold the compute lane so that the job stays queued.
        let gate = DispatchSemaphore(value: 0)
        try s.server.lane.submit { gate.wait() }
        let body: [String: Any] = ["model": "gpt2-tiny", "clean": "a b c", "corrupt": "a b d", "answer": " d", "metric": "prob"]
        let job = try await s.post("/api/jobs", body)
        #expect(job.status == 202, "\(job.error)")
        let id = try job.decode(JobStatus.self).id
        let refused = try await s.post("/api/jobs", body)
        #expect(refused.status == 429)
        #expect(refused.error.contains("limit is 1"))
        let badWait = try await s.get("/api/jobs/\(id)?wait=99")
        #expect(badWait.status == 400 && badWait.error.contains("'wait' must be"))
        let cancelled = try await s.request("DELETE", "/api/jobs/\(id)")
        #expect(cancelled.status == 200)
        #expect(try cancelled.decode(JobStatus.self).state == "cancelled")
        gate.signal()
        // Once the lane is free, the next request runs after the cancelled job would have: it did not run.
        _ = try await s.post("/api/tokens", ["model": "gpt2-tiny", "prompt": "x"])
        let after = try await s.get("/api/jobs/\(id)").decode(JobStatus.self)
        #expect(after.state == "cancelled" && after.patch == nil && after.done == 0)
        #expect(try await s.post("/api/jobs", body).status == 202)
    }

    /// The top-k of a response are the model's own: each logit equals the direct run's logit of that id,
    /// and none is below the direct k-th best (so ties may come in either order).
    static func expectTop(_ got: [Candidate], _ tokens: [Int], _ loaded: LoadedModel, _ note: String) throws {
        let logits = try loaded.model.run([tokens])
        let v = loaded.model.config.dVocab, T = tokens.count
        let row = Array(logits.scalars[((T - 1) * v)..<(T * v)])
        let kth = try logits.topPredictions(k: got.count).last?.logit ?? 0
        for c in got {
            #expect(abs(c.logit - row[c.id]) < 1e-4, "\(note): logit of \(c.id) \(c.logit) vs \(row[c.id])")
            #expect(c.logit >= kth - 1e-4, "\(note): \(c.id) is not in the top \(got.count)")
        }
    }

    /// Concurrent first requests load the model once, and each gets its own prompt's answer.
    @Test func concurrentRequests() async throws {
        let s = try await TestServer.start(preload: false)
        defer { s.stop() }
        let loaded = try Self.model()
        let prompts = (0..<12).map { "The number \($0) comes after" + String(repeating: " the other", count: $0 % 4) }
        let answers = try await withThrowingTaskGroup(of: (Int, PredictResponse).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask { (i, try await s.post("/api/predict", ["model": "gpt2-tiny", "prompt": p, "topK": 3]).decode(PredictResponse.self)) }
            }
            var out: [Int: PredictResponse] = [:]
            for try await (i, r) in group { out[i] = r }
            return out
        }
        for (i, p) in prompts.enumerated() {
            let ids = try loaded.requireTokenizer().encodeForModel(p)
            let answer = try #require(answers[i])
            #expect(answer.tokens.map(\.id) == ids)
            try Self.expectTop(answer.predictions, ids, loaded, "prompt \(i)")
        }
        let models = try await s.get("/api/models").decode(ModelsResponse.self)
        let tiny = try #require(models.models.first { $0.name == "gpt2-tiny" })
        #expect(tiny.loads == 1 && tiny.state == "loaded")
    }

    /// Predictions that wait for the model run as one left-padded batch, each row as if alone.
    @Test func waitingPredictionsRunAsOneBatch() async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let loaded = try Self.model()
        _ = try await s.post("/api/tokens", ["model": "gpt2-tiny", "prompt": "x"])   // loaded
        let batcher = s.server.batcher("gpt2-tiny")
        let gate = DispatchSemaphore(value: 0)
        try s.server.lane.submit { gate.wait() }
        let prompts = ["Hello", "The cat sat on the mat and then", "One two three four", "A"]
        async let answers = withThrowingTaskGroup(of: (Int, PredictResponse).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask { (i, try await s.post("/api/predict", ["model": "gpt2-tiny", "prompt": p, "topK": 5]).decode(PredictResponse.self)) }
            }
            var out: [Int: PredictResponse] = [:]
            for try await (i, r) in group { out[i] = r }
            return out
        }
        for _ in 0..<3000 where batcher.waiting < prompts.count { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(batcher.waiting == prompts.count)
        gate.signal()
        let results = try await answers
        #expect(batcher.batchesRun == 1)
        for (i, p) in prompts.enumerated() {
            let ids = try loaded.requireTokenizer().encodeForModel(p)
            try Self.expectTop(try #require(results[i]).predictions, ids, loaded, "batched prompt \(i)")
        }
    }

    /// Bad requests: a 4xx with a message saying what was wrong, and the server goes on answering.
    @Test(arguments: [
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"prompt\": ", 400, "invalid JSON"),
        ("POST", "/api/predict", "", 400, "empty"),
        ("POST", "/api/predict", "{\"prompt\": \"hi\"}", 400, "missing field 'model'"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi\", \"topK\": \"ten\"}", 400, "'topK' must be an integer"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\"}", 400, "give 'prompt'"),
        ("POST", "/api/predict", "{\"model\": \"no-such-model\", \"prompt\": \"hi\"}", 404, "unknown model 'no-such-model'"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"prompt\": \"\(String(repeating: " word", count: 40))\"}", 413, "40 tokens; the limit is 32"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"prompt\": \"\(String(repeating: "x", count: 5000))\"}", 413, "limit is 4096"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"ids\": [1, 99999]}", 422, "token id 99999 is out of range"),
        ("POST", "/api/predict", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi\", \"topK\": 0}", 422, "'topK' must be 1…100"),
        ("POST", "/api/attention", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi there\", \"layer\": 7, \"head\": 0}", 422, "'layer' 7 is out of range"),
        ("POST", "/api/attention", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi there\", \"layer\": 0, \"head\": 9}", 422, "'head' 9 is out of range"),
        ("POST", "/api/neurons", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi\", \"layer\": -1}", 422, "'layer' -1 is out of range"),
        ("POST", "/api/lens", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi\", \"target\": \" Mary Mary\"}", 422, "is 2 tokens"),
        ("POST", "/api/lens", "{\"model\": \"gpt2-tiny\", \"prompt\": \"hi\", \"norm\": \"sideways\"}", 422, "'norm' must be recompute or cached"),
        ("POST", "/api/jobs", "{\"model\": \"gpt2-tiny\", \"clean\": \"a b\", \"corrupt\": \"a c\", \"answer\": \" c\", \"hook\": \"blocks.0.hook_nope\"}", 422, "unknown hook 'blocks.0.hook_nope'"),
        ("POST", "/api/jobs", "{\"model\": \"gpt2-tiny\", \"clean\": \"a b\", \"corrupt\": \"a b c\", \"answer\": \" c\", \"metric\": \"prob\"}", 422, "same number of tokens"),
        ("POST", "/api/jobs", "{\"model\": \"gpt2-tiny\", \"clean\": \"a b\", \"corrupt\": \"a c\", \"answer\": \" c\"}", 422, "needs 'wrong'"),
        ("GET", "/api/jobs/no-such-job", "", 404, "no job 'no-such-job'"),
        ("GET", "/api/jobs/no-such-job?wait=1", "", 404, "no job 'no-such-job'"),
        ("GET", "/api/nothing", "", 404, "no route GET /api/nothing"),
    ])
    func badRequest(method: String, path: String, body: String, status: Int, message: String) async throws {
        let s = try await TestServer.start()
        defer { s.stop() }
        let answer = try await s.request(method, path, body: body.isEmpty ? nil : Data(body.utf8))
        #expect(answer.status == status, "\(path) \(body.prefix(80)): \(answer.status) \(answer.error)")
        #expect(answer.error.contains(message), "expected '\(message)' in '\(answer.error)'")
        // Still serving.
        let after = try await s.post("/api/tokens", ["model": "gpt2-tiny", "prompt": "still here"])
        #expect(after.status == 200)
    }

    @Test func defaultsBindLoopback() {
        #expect(ExplorerConfiguration().host == "127.0.0.1")
    }
}
