// The tensors of a Hugging Face checkpoint folder: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` (`{"weight_map": {"name": "model-00001-of-00002.safetensors", …}}`).
// F32, F16, BF16 and F64 tensors are read as float32. Every tensor a converter takes is recorded, so that
// a checkpoint with weights no converter used (a bias the config did not announce) is an error rather
// than a silently different model.

import Foundation
import LoupeFormats
import LoupeTensor

final class Checkpoint {
    /// The tensors there are, with their shapes.
    private let shapes: [String: [Int]]
    private let read: (String) throws -> Tensor
    /// A matrix read in place, when the source can give one (nil: not viewable).
    private let view: (String) throws -> QuantizedMatrix?
    private var taken: Set<String> = []
    /// The folder or file, for messages.
    let path: String

    /// Any source of named tensors (a GGUF file, dequantized on read), and of matrices read in place.
    init(path: String, shapes: [String: [Int]], read: @escaping (String) throws -> Tensor,
         view: @escaping (String) throws -> QuantizedMatrix? = { _ in nil }) {
        self.path = path
        self.shapes = shapes
        self.read = read
        self.view = view
    }

    /// A matrix read in place from the mapped file, `[rows, columns]`; nil when this tensor cannot be
    /// (a dtype or type the kernels do not read).
    /// - Throws: `ModelError.missingWeight`, or `.weightShape` for other dimensions.
    func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> QuantizedMatrix? {
        try check(name, [rows, columns])
        return try view(name)
    }

    /// The tensors of a GGUF file, dequantized on read.
    convenience init(gguf: GGUFFile) throws {
        var shapes: [String: [Int]] = [:]
        for info in gguf.tensorInfos { shapes[info.name] = info.shape }
        self.init(path: gguf.path, shapes: shapes, read: { try gguf.tensor($0) }, view: { name in
            QuantizedMatrix.supports(try gguf.info(name).type) ? try gguf.matrix(name) : nil
        })
    }

    private convenience init(path: String, files: [String: SafetensorsFile]) {
        self.init(path: path, shapes: Dictionary(uniqueKeysWithValues: files.map { ($0.key, $0.value.entries[$0.key]?.shape ?? []) }),
                  read: { name in
                      guard let file = files[name] else { throw ModelError.missingWeight(name: name, file: path) }
                      return try file.tensor(name)
                  },
                  view: { name in
                      guard let file = files[name] else { throw ModelError.missingWeight(name: name, file: path) }
                      return try file.matrix(name)
                  })
    }

    /// Opens the weights of a model folder.
    convenience init(folder dir: URL) throws {
        let fm = FileManager.default
        let single = dir.appendingPathComponent("model.safetensors")
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: single.path) {
            let file = try SafetensorsFile(path: single.path)
            self.init(path: dir.path, files: Dictionary(uniqueKeysWithValues: file.entries.keys.map { ($0, file) }))
            return
        }
        guard let data = fm.contents(atPath: index.path) else {
            throw ModelError.missingFile(path: single.path, what: "weights (model.safetensors or model.safetensors.index.json)")
        }
        guard let j = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = j["weight_map"] as? [String: String] else {
            throw ModelError.invalidConfig("\(index.path): expected {\"weight_map\": {tensor name: shard file}}")
        }
        var opened: [String: SafetensorsFile] = [:]
        var out: [String: SafetensorsFile] = [:]
        for (name, shard) in map {
            guard !shard.contains("/"), !shard.hasPrefix(".") else {
                throw ModelError.invalidConfig("\(index.path): shard '\(shard)' must be a file name in the model folder")
            }
            if opened[shard] == nil {
                let url = dir.appendingPathComponent(shard)
                guard fm.fileExists(atPath: url.path) else { throw ModelError.missingFile(path: url.path, what: "weight shard") }
                opened[shard] = try SafetensorsFile(path: url.path)
            }
            guard let file = opened[shard], file.entries[name] != nil else {
                throw ModelError.missingWeight(name: name, file: dir.appendingPathComponent(shard).path + " (listed in model.safetensors.index.json)")
            }
            out[name] = file
        }
        for (shard, file) in opened {
            for name in file.entries.keys where map[name] == nil {
                throw ModelError.invalidConfig("\(dir.appendingPathComponent(shard).path): tensor '\(name)' is not in model.safetensors.index.json")
            }
        }
        self.init(path: dir.path, files: out)
    }

    /// Whether the checkpoint has a tensor.
    func contains(_ name: String) -> Bool { shapes[name] != nil }

    /// A tensor of the given shape; nil when the checkpoint does not have it.
    func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
        guard let known = shapes[name] else { return nil }
        taken.insert(name)
        // A shape known up front is checked before reading (a GGUF tensor is dequantized on read).
        if !known.isEmpty, known != shape { throw ModelError.weightShape(name: name, expected: shape, found: known) }
        let t = try read(name)
        guard t.shape == shape else { throw ModelError.weightShape(name: name, expected: shape, found: t.shape) }
        return t
    }

    /// Checks that a tensor exists with the given shape and marks it used, without reading it (a matrix
    /// the forward pass reads in place).
    func claim(_ name: String, _ shape: [Int]) throws {
        try check(name, shape)
        taken.insert(name)
    }

    /// Fails unless the checkpoint has the tensor with this shape.
    private func check(_ name: String, _ shape: [Int]) throws {
        guard let known = shapes[name] else { throw ModelError.missingWeight(name: name, file: path) }
        guard known == shape else { throw ModelError.weightShape(name: name, expected: shape, found: known) }
    }

    /// A tensor of the given shape.
    /// - Throws: `ModelError.missingWeight` when the checkpoint lacks it.
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        guard let t = try optional(name, shape) else { throw ModelError.missingWeight(name: name, file: path) }
        return t
    }

    /// Fails when a tensor was not used, other than buffers matching `ignoring` (suffixes such as
    /// `rotary_emb.inv_freq`).
    func finish(ignoring suffixes: [String] = []) throws {
        let left = shapes.keys.filter { name in !taken.contains(name) && !suffixes.contains { name.hasSuffix($0) } }.sorted()
        guard left.isEmpty else {
            let shown = left.prefix(5).joined(separator: ", ") + (left.count > 5 ? ", … (\(left.count) in all)" : "")
            throw ModelError.invalidConfig("\(path): the checkpoint has weights the config does not account for: \(shown)")
        }
    }
}

/// Conversions from PyTorch `nn.Linear` layouts (`[out, in]`) to TransformerLens's.
enum HFLayout {
    /// `[heads·d_head, d_model]` → `W [heads, d_model, d_head]`.
    static func headsIn(_ w: Tensor, heads: Int) throws -> Tensor {
        let (rows, d) = (w.shape[0], w.shape[1])
        return try w.reshaped([heads, rows / heads, d]).transposed()
    }

    /// An output projection `[d_model, heads·d_head]` → `W_O [heads, d_head, d_model]`.
    static func headsOut(_ w: Tensor, heads: Int) throws -> Tensor {
        let d = w.shape[0]
        return try w.transposed().reshaped([heads, w.shape[1] / heads, d])
    }

    /// Rows `[start, start + count)` of a 2-D tensor (or elements of a 1-D one).
    static func rows(_ t: Tensor, _ start: Int, _ count: Int) -> Tensor {
        let width = t.rank == 1 ? 1 : t.shape[1]
        let slice = Array(t.scalars[(start * width)..<((start + count) * width)])
        return Tensor(unchecked: t.rank == 1 ? [count] : [count, width], slice)
    }

    /// `1 + w`: Gemma's RMSNorm multiplies by (1 + weight).
    static func plusOne(_ t: Tensor) -> Tensor { Tensor(unchecked: t.shape, t.scalars.map { 1 + $0 }) }
}
