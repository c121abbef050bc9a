// The explorer's longer analyses, run as jobs with progress: causal tracing (`loupe trace`) and path
// patching (`loupe path-patch`). Each request is checked into a plan when it arrives (so a bad one is a 4xx at
// once), and the plan runs later on the compute lane.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor

extension Analyses {
    struct TracePlan: Sendable {
        let tokens: [Int]; let subject: Range<Int>; let answer: Int
        let kind: TraceKind; let window: Int; let samples: Int; let noise: Float?; let seed: UInt64
    }

    func plan(_ r: TraceRequest) throws -> TracePlan {
        let ids = try tokens(prompt: r.prompt, ids: nil)
        let subject: Range<Int>
        do { subject = try loaded.model.subjectPositions(r.subject, in: r.prompt, tokens: ids) } catch let e as InterpError {
            throw APIError.unprocessable("'subject': \(e)")
        }
        let kindName = r.kind ?? TraceKind.resid.rawValue
        guard let kind = TraceKind(rawValue: kindName) else {
            throw APIError.unprocessable("'kind' must be \(TraceKind.allCases.map(\.rawValue).joined(separator: ", ")), found '\(kindName)'")
        }
        // ROME's window of 10 blocks, or every block of a smaller model; a larger one is cut at the model's edges.
        let window = r.window ?? min(10, config.nLayers), samples = r.samples ?? 5
        guard window >= 1 else { throw APIError.unprocessable("'window' must be at least 1, found \(window)") }
        guard (1...50).contains(samples) else { throw APIError.unprocessable("'samples' must be 1…50, found \(samples)") }
        if let noise = r.noise, !(noise.isFinite && noise > 0) {
            throw APIError.unprocessable("'noise' must be a positive number, found \(noise)")
        }
        return TracePlan(tokens: ids, subject: subject, answer: try singleToken(r.answer, field: "answer"), kind: kind,
                         window: window, samples: samples, noise: r.noise, seed: r.seed ?? 0)
    }

    func trace(_ p: TracePlan, progress: @escaping ProgressHandler, isCancelled: @escaping @Sendable () -> Bool) throws -> TraceResponse {
        let t = try loaded.model.causalTrace(tokens: p.tokens, subject: p.subject, answer: p.answer, kind: p.kind, window: p.window,
                                             noise: p.noise, samples: p.samples, seed: p.seed, progress: progress, isCancelled: isCancelled)
        return TraceResponse(model: name, tokens: info(p.tokens), subject: Array(t.subject), answer: info([p.answer])[0],
                             kind: t.kind.rawValue, window: t.window, samples: p.samples, clean: t.cleanProbability,
                             corrupted: t.corruptedProbability, restored: grid(t.restored))
    }

    struct PathPlan: Sendable {
        let pair: PatchPair; let receiver: PathReceiver; let receiverName: String
    }

    func plan(_ r: PathPatchRequest) throws -> PathPlan {
        let clean = try tokens(prompt: r.clean, ids: nil, field: "clean"), corrupt = try tokens(prompt: r.corrupt, ids: nil, field: "corrupt")
        guard clean.count == corrupt.count else {
            throw APIError.unprocessable("'clean' is \(clean.count) tokens and 'corrupt' \(corrupt.count): path patching needs prompts of one length")
        }
        let name = r.receiver ?? "logits"
        let receiver: PathReceiver
        do { receiver = try PathReceiver(parsing: name) } catch let e as InterpError { throw APIError.unprocessable("'receiver': \(e)") }
        if case .heads(let layer, let heads, let input) = receiver {
            _ = try self.layer(layer, field: "receiver")
            // Keys and values have the model's key-value heads (fewer under grouped-query attention).
            let count = input == .q ? config.nHeads : config.nKeyValueHeads
            for h in heads where h < 0 || h >= count {
                throw APIError.unprocessable("'receiver': head \(h) is out of range: the model's \(input.rawValue) inputs have heads 0..<\(count)")
            }
        }
        let metric = PatchMetric.logitDifference(answer: try singleToken(r.answer, field: "answer"), wrong: try singleToken(r.wrong, field: "wrong"))
        return PathPlan(pair: PatchPair(clean: clean, corrupted: corrupt, metric: metric), receiver: receiver, receiverName: name)
    }

    func pathPatch(_ p: PathPlan, progress: @escaping ProgressHandler, isCancelled: @escaping @Sendable () -> Bool) throws -> PathPatchResponse {
        let result = try loaded.model.pathPatch(pairs: [p.pair], receiver: p.receiver, progress: progress, isCancelled: isCancelled)
        return PathPatchResponse(model: name, receiver: p.receiverName, clean: result.clean, corrupted: result.corrupted,
                                 values: grid(result.values), normalized: grid(result.normalized), cleanTokens: info(p.pair.clean))
    }
}
