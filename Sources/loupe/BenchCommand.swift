import ArgumentParser
import Foundation
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the standard workloads and print one JSON object (keys as in docs/benchmarks.md).",
        discussion: """
            Example:
              loupe bench --model smollm2-135m --workloads prompt128,generate64
            """)

    @Option(name: .long, help: "A model: a known name, a .gguf file, or a Hugging Face folder.")
    var model: String

    @Option(name: .long, help: "Comma-separated: \(Benchmark.allWorkloads.joined(separator: ",")).")
    var workloads: String = Benchmark.allWorkloads.joined(separator: ",")

    @Option(name: .long, parsing: .unconditional, help: "Threads for BLAS and Loupe's kernels.", transform: Count.positive)
    var threads: Int = 2

    @Flag(name: .long, help: "Run float32 copies of the weights instead of the file's weights in place.")
    var dequantize = false

    func run() throws {
        BLAS.setThreads(threads)
        let chosen = workloads.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        let path = try resolveModel(model)
        let progress = ProgressBar(total: chosen.count, label: "bench")
        var started = 0
        let figures = try Benchmark.run(path: path, workloads: chosen, dequantize: dequantize) { w in
            if progress.drawsInPlace {
                progress.update(completed: started, extra: w)
            } else {
                FileHandle.standardError.write(Data("bench: \(w)…\n".utf8))
            }
            started += 1
        }
        progress.update(completed: chosen.count)
        progress.finish()
        var out: [String: Any] = ["side": "loupe", "threads": threads, "blas_core": BLAS.core]
        for (k, v) in figures.numbers { out[k] = (v * 1000).rounded() / 1000 }
        for (k, m) in figures.matrices { out[k] = m.map { $0.map(Double.init) } }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
