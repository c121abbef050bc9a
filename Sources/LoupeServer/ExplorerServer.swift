// `loupe serve`: the explorer's HTTP server (Hummingbird): the page, and the JSON API behind it.

import Foundation
import Hummingbird
import Logging
import LoupeModels
import NIOCore

/// The web explorer: a page where a person picks a model, types a prompt and explores predictions, the
/// logit lens, attention, head scores, patching and neurons, over a JSON API (docs/api.md).
public struct ExplorerServer: Sendable {
    public let configuration: ExplorerConfiguration
    let store: ModelStore
    let lane: ComputeLane
    let jobs: JobManager
    let batchers = Batchers()
    let requestLog = RequestLog()
    let page: Page
    let attachments: Attachments
    let weightResults = WeightResults()

    public init(configuration: ExplorerConfiguration) throws {
        self.configuration = configuration
        store = ModelStore(models: configuration.models)
        lane = ComputeLane(maxPending: configuration.limits.maxPendingRequests)
        jobs = JobManager(lane: lane, maxActive: configuration.limits.maxActiveJobs, maxKept: configuration.limits.maxKeptJobs)
        page = try Page.load()
        attachments = try Attachments(saes: configuration.saes, tunedLenses: configuration.tunedLenses, models: configuration.models)
        try ExplorerConfiguration.checkAccess(host: configuration.host, token: configuration.token)
        for name in configuration.preload where !configuration.models.contains(where: { $0.name == name }) {
            throw APIError.notFound("cannot preload '\(name)': the server offers \(configuration.models.map(\.name).joined(separator: ", "))")
        }
    }

    /// Serves until the surrounding task is cancelled. `onRunning` hears the bound port (useful with port 0).
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let preload = configuration.preload
        let store = self.store
        for name in preload {
            Task { _ = try? await store.model(name) }
        }
        let port = configuration.port
        var logger = Logger(label: "loupe.serve")
        logger.logLevel = configuration.quiet ? .critical : .notice
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
            configuration: .init(address: .hostname(configuration.host, port: port), serverName: "loupe"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
        try await app.run()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestLogger(log: requestLog, echo: !configuration.quiet))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: RequestGuard(configuration: configuration))
        router.get("/") { _, _ in page.response("index.html") }
        router.get("/static/:file") { _, context in page.response(try context.parameters.require("file")) }
        router.get("/api/health") { _, _ in try json(["ok": true]) }
        router.get("/api/models") { _, _ in
            let statuses = await store.statuses().map { status in
                var s = status
                s.saes = attachments.saes[s.name].map { $0.map(\.name) }
                s.tunedLens = attachments.tunedLenses[s.name]?.name
                return s
            }
            return try json(ModelsResponse(models: statuses, limits: configuration.limits))
        }
        router.post("/api/neuron") { request, context in
            let indexes = configuration.neuronIndexes
            return try await compute(request, NeuronRequest.self) { a, r in try a.neuron(r, indexes: indexes) }
        }
        router.post("/api/token") { request, context in
            try await compute(request, TokenRequest.self) { a, r in try a.token(r) }
        }
        router.post("/api/attribute") { request, context in
            try await compute(request, AttributeRequest.self) { a, r in try a.attribute(r) }
        }
        router.post("/api/features") { request, context in
            try await compute(request, FeaturesRequest.self) { a, r in try a.features(r) }
        }
        router.post("/api/copying") { request, context in
            try await compute(request, CopyingRequest.self) { a, r in try a.copying(r) }
        }
        router.post("/api/composition") { request, context in
            try await submitJob(request, CompositionRequest.self, kind: "composition", plan: { try $0.plan($1) }) { a, plan, job in
                .composition(try a.composition(plan, progress: job.progress, isCancelled: { job.isCancelled }))
            }
        }
        router.get("/api/requests") { _, _ in try json(["requests": await requestLog.recent()]) }
        router.post("/api/tokens") { request, context in
            try await compute(request, TokensRequest.self) { a, r in try a.tokenize(r) }
        }
        router.post("/api/predict") { request, context in
            // Checked and tokenized here; the forward pass is batched with other waiting predictions.
            let r = try await decode(request, PredictRequest.self)
            let a = try await analyses(r.model)
            let k = try a.count(r.topK, field: "topK", default: 10)
            let ids = try a.tokens(r)
            let top = try await batcher(r.model).predict(a, tokens: ids, k: k)
            return try json(PredictResponse(model: r.model, tokens: a.info(ids), predictions: a.candidates(top)))
        }
        router.post("/api/lens") { request, context in
            try await compute(request, LensRequest.self) { a, r in try a.lens(r) }
        }
        router.post("/api/attention") { request, context in
            try await compute(request, AttentionRequest.self) { a, r in try a.attention(r) }
        }
        router.post("/api/heads") { request, context in
            try await compute(request, HeadsRequest.self) { a, r in try a.heads(r) }
        }
        router.post("/api/neurons") { request, context in
            try await compute(request, NeuronsRequest.self) { a, r in try a.neurons(r) }
        }
        router.post("/api/ablate") { request, context in
            try await compute(request, AblateRequest.self) { a, r in try a.ablate(r) }
        }
        // Long analyses run as jobs; each request is checked into a plan first, so a bad one is a 4xx at once.
        router.post("/api/jobs") { request, context in
            try await submitJob(request, PatchRequest.self, kind: "patch", plan: { try $0.plan($1) }) { a, plan, job in
                .patch(try a.patch(plan, progress: job.progress, isCancelled: { job.isCancelled }))
            }
        }
        router.post("/api/trace") { request, context in
            try await submitJob(request, TraceRequest.self, kind: "trace", plan: { try $0.plan($1) }) { a, plan, job in
                .trace(try a.trace(plan, progress: job.progress, isCancelled: { job.isCancelled }))
            }
        }
        router.post("/api/path-patch") { request, context in
            try await submitJob(request, PathPatchRequest.self, kind: "path-patch", plan: { try $0.plan($1) }) { a, plan, job in
                .pathPatch(try a.pathPatch(plan, progress: job.progress, isCancelled: { job.isCancelled }))
            }
        }
        router.get("/api/jobs") { _, _ in try json(["jobs": await jobs.all()]) }
        router.get("/api/jobs/:id") { request, context in
            let job = try await jobs.job(try context.parameters.require("id"))
            // `?wait=S` (at most 10): answer when the job ends or after S seconds, whichever is first.
            if let text = request.uri.queryParameters["wait"] {
                guard let wait = Double(String(text)), wait >= 0, wait <= 10 else {
                    throw APIError.badRequest("'wait' must be a number of seconds 0…10, found '\(text)'")
                }
                let deadline = Date().addingTimeInterval(wait)
                while job.isActive && Date() < deadline { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            return try json(job.status)
        }
        router.delete("/api/jobs/:id") { _, context in
            let job = try await jobs.job(try context.parameters.require("id"))
            job.cancel()
            return try json(job.status)
        }
        return router
    }

    /// The prediction batcher of a model.
    func batcher(_ model: String) -> PredictBatcher { batchers.batcher(model, lane: lane) }

    /// The analyses of a model, loading it on first use.
    func analyses(_ model: String) async throws -> Analyses {
        Analyses(loaded: try await store.model(model), name: model, limits: configuration.limits, saes: attachments.saes[model] ?? [],
                 tunedLens: attachments.tunedLenses[model], weightResults: weightResults)
    }

    /// Decodes the body as `T`, loads its model, checks the request into a plan, and submits the plan's work
    /// as a job of `kind`: 202 and the job's status.
    func submitJob<T: Decodable & Sendable & ModelNamed, Plan: Sendable>(
        _ request: Request, _ type: T.Type, kind: String, plan: (Analyses, T) throws -> Plan,
        work: @escaping @Sendable (Analyses, Plan, Job) throws -> JobResult
    ) async throws -> Response {
        let r = try await decode(request, type)
        let a = try await analyses(r.model)
        let checked = try plan(a, r)
        let job = try await jobs.submit(kind: kind) { job in try work(a, checked, job) }
        return try json(job.status, status: .accepted)
    }

    /// Decodes the body as `T`, loads its model, and runs `work` on the compute lane.
    func compute<T: Decodable & Sendable, R: Encodable & Sendable>(
        _ request: Request, _ type: T.Type, _ work: @escaping @Sendable (Analyses, T) throws -> R
    ) async throws -> Response where T: ModelNamed {
        let r = try await decode(request, type)
        let a = try await analyses(r.model)
        return try json(try await lane.run { try work(a, r) })
    }

    /// The body as `T`: 413 beyond the size limit, 400 for invalid JSON or a missing or mistyped field.
    func decode<T: Decodable>(_ request: Request, _ type: T.Type) async throws -> T {
        let limit = configuration.limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge("the request body is \(length) bytes; the limit is \(limit)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.tooLarge("the request body is over the limit of \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("the request body is empty: send a JSON object") }
        let data = Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.dataCorrupted(let c) where c.codingPath.isEmpty {
            // Foundation reports a number that does not fit its field (1.5 for an integer, -1 for a count) as
            // invalid JSON without naming the field: when the body is valid JSON, find the field.
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw DecodingError.dataCorrupted(c)
            }
            // Numbers only (the misfit is a number), suspicious ones first: fractions and negatives.
            func suspicious(_ v: Any?) -> Bool {
                guard let n = v as? NSNumber else { return false }
                return n.doubleValue != n.doubleValue.rounded() || n.doubleValue < 0
            }
            let numeric = object.keys.filter { (object[$0] as? NSNumber).map { String(cString: $0.objCType) != "c" } ?? false }
            for key in numeric.sorted(by: { (suspicious(object[$0]) ? 0 : 1, $0) < (suspicious(object[$1]) ? 0 : 1, $1) }) {
                var without = object
                without[key] = nil
                guard let rest = try? JSONSerialization.data(withJSONObject: without) else { continue }
                do {
                    _ = try JSONDecoder().decode(T.self, from: rest)
                } catch DecodingError.keyNotFound(let missing, _) where missing.stringValue == key {
                } catch {
                    continue
                }
                throw APIError.badRequest(Self.describeMisfit(key, object[key]))
            }
            throw DecodingError.dataCorrupted(c)
        }
    }

    /// Why a JSON value does not fit a numeric field, in words.
    static func describeMisfit(_ key: String, _ value: Any?) -> String {
        if let n = value as? NSNumber, String(cString: n.objCType) != "c" {
            let d = n.doubleValue
            if d != d.rounded() { return "'\(key)' must be an integer, found \(n)" }
            if d < 0 { return "'\(key)' must be an integer 0 or more, found \(n)" }
            return "'\(key)' is out of range, found \(n)"
        }
        return "'\(key)' has the wrong type, found \(value.map { "\($0)" } ?? "null")"
    }
}

/// One prediction batcher per model, made on first use.
final class Batchers: @unchecked Sendable {
    private let lock = NSLock()
    private var byModel: [String: PredictBatcher] = [:]

    func batcher(_ model: String, lane: ComputeLane) -> PredictBatcher {
        lock.lock(); defer { lock.unlock() }
        if let b = byModel[model] { return b }
        let b = PredictBatcher(lane: lane)
        byModel[model] = b
        return b
    }
}

/// A request that names its model.
protocol ModelNamed { var model: String { get } }
extension TokensRequest: ModelNamed {}
extension PredictRequest: ModelNamed {}
extension LensRequest: ModelNamed {}
extension AblateRequest: ModelNamed {}
extension AttentionRequest: ModelNamed {}
extension TokenRequest: ModelNamed {}
extension NeuronRequest: ModelNamed {}
extension PatchRequest: ModelNamed {}
extension TraceRequest: ModelNamed {}
extension PathPatchRequest: ModelNamed {}
extension AttributeRequest: ModelNamed {}
extension HeadsRequest: ModelNamed {}
extension NeuronsRequest: ModelNamed {}

/// A JSON response.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    let data = try encoder.encode(value)
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Turns every error into `{"error": "..."}` with its status, so that clients always get JSON.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var e = APIError.from(error)
            if e.status == .notFound, error is HTTPError { e = APIError.notFound("no route \(request.method) \(request.uri.path)") }
            return try json(["error": e.message], status: e.status)
        }
    }
}

/// The page's files (HTML, CSS, JS), read once from the target's resources.
struct Page: Sendable {
    let files: [String: (type: String, body: ByteBuffer)]

    static func load() throws -> Page {
        let types = ["index.html": "text/html; charset=utf-8", "explorer.css": "text/css; charset=utf-8",
                     "explorer.js": "text/javascript; charset=utf-8", "explorer-draw.js": "text/javascript; charset=utf-8",
                     "explorer-more.js": "text/javascript; charset=utf-8"]
        var files: [String: (type: String, body: ByteBuffer)] = [:]
        for (name, type) in types {
            let parts = name.split(separator: ".")
            guard let url = Bundle.module.url(forResource: String(parts[0]), withExtension: String(parts[1]), subdirectory: "page"),
                  let data = FileManager.default.contents(atPath: url.path) else {
                throw APIError(.internalServerError, "the explorer's page file \(name) is missing from the LoupeServer resources")
            }
            files[name] = (type, ByteBuffer(bytes: data))
        }
        return Page(files: files)
    }

    func response(_ name: String) -> Response {
        guard let file = files[name] else {
            return (try? json(["error": "no file '\(name)'"], status: .notFound)) ?? Response(status: .notFound)
        }
        return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "no-cache"], body: .init(byteBuffer: file.body))
    }
}

extension ExplorerConfiguration {
    /// Refuses an address other than loopback without a token (the API would be open to the network), and
    /// a token shorter than 16 characters or with spaces. (`loupe serve` checks this before anything starts.)
    public static func checkAccess(host: String, token: String?) throws {
        if !isLoopback(host) && (token ?? "").isEmpty {
            throw APIError(.internalServerError, "binding to \(host) opens the API to the network: "
                           + "give a token (--token or LOUPE_TOKEN) that every request must carry")
        }
        if let token, token.count < 16 || token.contains(where: { $0.isWhitespace }) {
            throw APIError(.internalServerError, "the token must be at least 16 characters without spaces")
        }
    }
}
