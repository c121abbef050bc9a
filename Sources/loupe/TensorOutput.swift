// A command's numbers as files a Python user can keep working with: `--npy` (the main tensor, for
// `numpy.load`) and `--safetensors` (every tensor of the result, for `safetensors.numpy.load_file`), with
// what each axis is in the metadata (`<name>.axes`: "layer,pos"; `labels.pos`: the tokens as a JSON list).

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeTensor

/// One tensor of a result, with the name of each axis.
struct ResultTensor {
    let name: String
    let tensor: Tensor
    let axes: [String]

    init(_ name: String, _ tensor: Tensor, axes: [String]) {
        self.name = name
        self.tensor = tensor
        self.axes = axes
    }
}

extension FigureOptions {
    /// Whether --npy or --safetensors was given.
    var wantsTensors: Bool { npy != nil || safetensors != nil }

    /// Writes the result's tensors (the first is the main one, for --npy); `labels` names the entries of
    /// an axis (positions by their tokens), `settings` go into the safetensors metadata as they are.
    func write(tensors: () throws -> [ResultTensor], labels: [String: [String]] = [:], settings: [(String, String)] = []) throws {
        guard wantsTensors else { return }
        let all = try tensors()
        guard let main = all.first else { return }
        for t in all where t.axes.count != t.tensor.rank {
            preconditionFailure("tensor \(t.name) has \(t.tensor.rank) axes but \(t.axes.count) names")
        }
        if let npy {
            try writeNPY(main.tensor, to: URL(fileURLWithPath: npy))
            let others = all.count > 1 ? "; --safetensors writes all \(all.count): \(all.map(\.name).joined(separator: ", "))" : ""
            note("wrote \(npy): \(main.name) \(main.tensor.shape) (\(main.axes.joined(separator: " × ")))\(others)")
        }
        if let safetensors {
            var metadata: [String: String] = ["format": "loupe-result", "main": main.name]
            for (k, v) in settings { metadata[k] = v }
            for t in all { metadata["\(t.name).axes"] = t.axes.joined(separator: ",") }
            let used = Set(all.flatMap(\.axes))
            for (axis, names) in labels where used.contains(axis) {
                metadata["labels.\(axis)"] = String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
            }
            try writeSafetensors(all.map { (name: $0.name, tensor: $0.tensor) }, metadata: metadata, to: URL(fileURLWithPath: safetensors))
            note("wrote \(safetensors): " + all.map { "\($0.name) \($0.tensor.shape)" }.joined(separator: ", "))
        }
    }
}
