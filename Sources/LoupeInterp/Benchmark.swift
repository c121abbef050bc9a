// The standard benchmark workloads (see docs/benchmarks.md): the same keys the peer's script prints.

import Foundation
import LoupeModels
import LoupeTensor

public enum Benchmark {
    /// The workloads, in the order they run.
    public static let allWorkloads = ["load", "forward128", "forward1024", "cache128", "patch16", "generate50",
                                      "prompt128", "generate64", "generate64_hooked", "generate8"]

    /// Figures by key, and the matrices some workloads also report (`patch16_result`).
    public struct Figures {
        public var numbers: [String: Double] = [:]
        public var matrices: [String: [[Float]]] = [:]
    }

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

    /// The fastest of `n` timed runs of `body` after one warm-up run, in seconds (llama.cpp's peer script
    /// reports its best of 3 as well).
    public static func best(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var fastest = Double.infinity
        for _ in 0..<n {
            let t = DispatchTime.now().uptimeNanoseconds
            try body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return fastest
    }

    /// Runs the workloads on the model at `path` (a folder or a GGUF file, run quantized in place unless
    /// `dequantize`) and returns the figures by key, with the process's peak resident memory (`peak_rss_mb`).
    public static func run(path: String, workloads: [String], dequantize: Bool = false,
                           progress: (String) -> Void = { _ in }) throws -> Figures {
        for w in workloads where !allWorkloads.contains(w) {
            throw ModelError.unsupported("unknown workload '\(w)'; known: \(allWorkloads.joined(separator: ", "))")
        }
        var figures = Figures()
        // The timed loads come first, each model released before the next: a second model held beside the
        // first would count its pages twice in the peak resident memory that the other workloads report.
        if workloads.contains("load") {
            progress("load")
            figures.numbers["load_s"] = try median(3, warmUp: 0) { _ = try ModelLoader.load(path: path, dequantize: dequantize) }
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let loaded = try ModelLoader.load(path: path, dequantize: dequantize)
        if figures.numbers["load_s"] == nil {
            figures.numbers["load_s"] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        let model = loaded.model
        let v = model.config.dVocab
        for w in workloads where w != "load" {   // timed above
            progress(w)
            switch w {
            case "forward128", "forward1024":
                let n = w == "forward128" ? 128 : 1024
                guard n <= model.config.nCtx else { continue }
                let x = ids(n, salt: 1, vocab: v)
                figures.numbers["\(w)_ms"] = try median(5) { _ = try model.run([x]) } * 1e3
            case "cache128":
                let x = ids(min(128, model.config.nCtx), salt: 1, vocab: v)
                var bytes = 0
                figures.numbers["cache128_ms"] = try median(5) {
                    let (_, cache) = try model.runWithCache(.tokens([x]))
                    bytes = cache.byteCount
                } * 1e3
                figures.numbers["cache128_mb"] = Double(bytes) / 1_048_576
            case "patch16":
                // Activation patching of resid_pre at every block × position (as TransformerLens's
                // get_act_patch_resid_pre), metric logit[last, a] − logit[last, b].
                let clean = ids(16, salt: 1, vocab: v), corrupt = ids(16, salt: 2, vocab: v)
                let metric = PatchMetric.logitDifference(answer: clean[15], wrong: corrupt[15])
                let t = DispatchTime.now().uptimeNanoseconds
                let result = try model.activationPatch(clean: clean, corrupted: corrupt, target: .residPre, metric: metric)
                figures.numbers["patch16_s"] = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
                let (layers, positions) = (result.values.shape[0], result.values.shape[1])
                figures.matrices["patch16_result"] = (0..<layers).map { l in
                    (0..<positions).map { (result.values.scalars[l * positions + $0] * 1e5).rounded() / 1e5 }
                }
            case "prompt128":
                // Prompt processing as llama.cpp measures it: 128 tokens in, the last position's logits out; best of 3.
                guard model.config.nCtx >= 128 else { continue }
                let x = ids(128, salt: 1, vocab: v)
                var options = ForwardOptions()
                options.lastPositionOnly = true
                figures.numbers["prompt128_tok_s"] = 128 / (try best(3) { _ = try model.run([x], options: options) })
            case "generate8", "generate64", "generate64_hooked":
                // Greedy generation after a 16-token prompt, KV cache; best of 3 (one run for generate8,
                // meant for big models). As llama.cpp's figure, the clock runs from the first sampled token:
                // the prompt's forward pass is not counted. The hooked variant reads every block's
                // resid_post (a read-only hook that touches each value).
                let n = w == "generate8" ? 8 : 64
                guard model.config.nCtx >= 16 + n + 1 else { continue }
                let prompt = ids(16, salt: 3, vocab: v)
                var hooks = Hooks()
                if w == "generate64_hooked" {
                    for l in 0..<model.config.nLayers {
                        hooks.add(.residPost(l)) { x, _ in _ = x.scalars.reduce(0, +) }
                    }
                }
                var fastest = Double.infinity
                for _ in 0..<(n == 8 ? 1 : 3) {
                    var start: UInt64 = 0
                    _ = try model.generate(prompt: prompt, maxTokens: n + 1, hooks: hooks) { _ in
                        if start == 0 { start = DispatchTime.now().uptimeNanoseconds }
                    }
                    fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                figures.numbers["\(w)_tok_s"] = Double(n) / fastest
            case "generate50":
                let prompt = ids(16, salt: 3, vocab: v)
                let s = try median(3) { _ = try model.generate(prompt: prompt, maxTokens: 50) }
                figures.numbers["generate50_tok_s"] = 50 / s
            default: break
            }
        }
        figures.numbers["peak_rss_mb"] = peakResidentMegabytes()
        return figures
    }

    /// The process's peak resident set size so far, in MiB (getrusage's ru_maxrss).
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        #if os(Linux)
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        return Double(usage.ru_maxrss) / 1024   // kilobytes
        #else
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
        return Double(usage.ru_maxrss) / 1_048_576   // bytes
        #endif
    }
}
