// The standard benchmark workloads (see docs/benchmarks.md): the same keys the peer's script prints.

import Foundation
import LoupeTensor

public enum Benchmark {
    /// The workloads, in the order they run.
    public static let allWorkloads = ["load", "forward128", "forward1024", "cache128", "generate50"]

    /// Token ids shared with the peer's script: `ids(n, salt)[i] = (i · 7919 + salt) mod 50257`, folded
    /// into the model's vocabulary.
    public static func ids(_ n: Int, salt: Int, vocab: Int) -> [Int] {
        (0..<n).map { ($0 * 7919 + salt) % 50257 % vocab }
    }

    /// The median of `n` timed runs of `body` after one warm-up run, in seconds.
    public static func median(_ n: Int, warmUp: Int = 1, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmUp { try body() }
        var times: [Double] = []
        for _ in 0..<n {
            let t = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        times.sort()
        return times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    }

    /// Runs the workloads on the model folder at `path` and returns the figures by key.
    public static func run(path: String, workloads: [String], progress: (String) -> Void = { _ in }) throws -> [String: Double] {
        for w in workloads where !allWorkloads.contains(w) {
            throw ModelError.unsupported("unknown workload '\(w)'; known: \(allWorkloads.joined(separator: ", "))")
        }
        var out: [String: Double] = [:]
        let t0 = DispatchTime.now().uptimeNanoseconds
        let loaded = try ModelLoader.load(path: path)
        out["load_s"] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let model = loaded.model
        let v = model.config.dVocab
        for w in workloads {
            progress(w)
            switch w {
            case "load":
                out["load_s"] = try median(3, warmUp: 0) { _ = try ModelLoader.load(path: path) }
            case "forward128", "forward1024":
                let n = w == "forward128" ? 128 : 1024
                guard n <= model.config.nCtx else { continue }
                let x = ids(n, salt: 1, vocab: v)
                out["\(w)_ms"] = try median(5) { _ = try model.run([x]) } * 1e3
            case "cache128":
                let x = ids(min(128, model.config.nCtx), salt: 1, vocab: v)
                var bytes = 0
                out["cache128_ms"] = try median(5) {
                    let (_, cache) = try model.runWithCache(.tokens([x]))
                    bytes = cache.byteCount
                } * 1e3
                out["cache128_mb"] = Double(bytes) / 1_048_576
            case "generate50":
                let prompt = ids(16, salt: 3, vocab: v)
                let s = try median(3) { _ = try model.generate(prompt: prompt, maxTokens: 50) }
                out["generate50_tok_s"] = 50 / s
            default: break
            }
        }
        return out
    }
}
