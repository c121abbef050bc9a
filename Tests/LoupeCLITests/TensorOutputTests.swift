// `--npy` and `--safetensors` on the analysis commands: the files hold the same numbers as the command's
// JSON (a separate path through the encoder), with the axes and labels named in the metadata.

import Foundation
import LoupeFormats
import LoupeTensor
import Testing
@testable import loupe

@Suite(.serialized) struct TensorOutputTests: RunsLoupe {
    let model = "Tests/Fixtures/gpt2-tiny"
    let prompt = "When Mary and John went to the store, John gave a drink to"

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-tensor-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A float32 C-order .npy file, read by hand: shape from the header dict, data after it.
    func readNPY(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        let data = try Data(contentsOf: url)
        #expect(data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "\(header)")
        let inside = try #require(header.range(of: "'shape': (")).upperBound
        let close = try #require(header[inside...].firstIndex(of: ")"))
        let shape = header[inside..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let body = data[(10 + headerLength)...]
        let values = body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(values.count == shape.reduce(1, *))
        return (shape, values)
    }

    func json(_ output: String) throws -> Any {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let text = lines.drop { !$0.hasPrefix("{") && !$0.hasPrefix("[") }.joined(separator: "\n")
        return try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    func flat(_ nested: Any?) -> [Float] {
        if let n = nested as? NSNumber { return [n.floatValue] }
        return (nested as? [Any] ?? []).flatMap(flat)
    }

    @Test func patchingWritesItsGrid() throws {
        let dir = try scratch()
        let npy = dir.appendingPathComponent("patch.npy"), st = dir.appendingPathComponent("patch.safetensors")
        let r = try run(["patch", "--model", model, "--clean", prompt, "--corrupt", prompt.replacingOccurrences(of: "John gave", with: "Mary gave"),
                         "--answer", " Mary", "--wrong", " John", "--hook", "resid_pre", "--json", "--npy", npy.path, "--safetensors", st.path])
        #expect(r.status == 0, "\(r.output)")
        let j = try #require(try json(r.output) as? [String: Any])
        let expected = flat(j["result"])
        let (shape, values) = try readNPY(npy)
        let T = 14   // GPT-2 tokens of the prompt
        #expect(shape == [2, T], "\(shape)")
        #expect(values == expected)
        let file = try SafetensorsFile(path: st.path)
        #expect(try file.tensor("result").scalars == expected)
        #expect(file.metadata["result.axes"] == "layer,pos" && file.metadata["main"] == "result" && file.metadata["hook"] == "resid_pre")
        let labels = try JSONDecoder().decode([String].self, from: Data((file.metadata["labels.pos"] ?? "").utf8))
        #expect(labels.count == T && labels.first == "0 When" && labels.last == "13  to", "\(labels)")
        #expect(Float(file.metadata["clean"] ?? "") == (j["clean"] as? NSNumber)?.floatValue)
        #expect(r.output.contains("wrote \(npy.path)"))
    }

    @Test func attributionAttentionHeadsAndCircuitsWriteTheirTensors() throws {
        let dir = try scratch()
        // Direct logit attribution: heads [layer, head] and the components, labelled.
        let a = dir.appendingPathComponent("dla.safetensors")
        let dla = try run(["attribute", "--model", model, "--prompt", prompt, "--answer", " Mary", "--wrong", " John", "--json", "--safetensors", a.path])
        #expect(dla.status == 0, "\(dla.output)")
        let dj = try #require(try json(dla.output) as? [String: Any])
        let file = try SafetensorsFile(path: a.path)
        #expect(try file.tensor("heads").scalars == flat(dj["heads"]) && file.entries["heads"]?.shape == [2, 4])
        let components = try file.tensor("components").scalars
        let names = try JSONDecoder().decode([String].self, from: Data((file.metadata["labels.component"] ?? "").utf8))
        let byName = try #require(dj["components"] as? [String: NSNumber])
        #expect(names.count == components.count && names.count == byName.count)
        for (n, v) in zip(names, components) { #expect(byName[n]?.floatValue == v, "\(n)") }

        // Attention: every head's pattern, [layer, head, query, key]; one head's matches its JSON.
        let p = dir.appendingPathComponent("attention.safetensors")
        let att = try run(["attention", "--model", model, "--prompt", "The cat sat on the mat", "--head", "1.2", "--json", "--safetensors", p.path])
        #expect(att.status == 0, "\(att.output)")
        let aj = try #require(try json(att.output) as? [String: Any])
        let patterns = try SafetensorsFile(path: p.path).tensor("pattern")
        let T = patterns.shape[2]
        #expect(patterns.shape == [2, 4, T, T] && T == 6)
        let one = Array(patterns.scalars[((1 * 4 + 2) * T * T)..<((1 * 4 + 3) * T * T)])
        #expect(one == flat(aj["pattern"]))
        // Causal: every row sums to 1 and nothing looks ahead.
        for q in 0..<T {
            #expect(Swift.abs(one[(q * T)..<((q + 1) * T)].reduce(0, +) - 1) < 1e-5)
            #expect(one[(q * T + q + 1)..<((q + 1) * T)].allSatisfy { $0 == 0 })
        }

        // Head scores and copying scores: [layer, head] each, as in their JSON.
        let h = dir.appendingPathComponent("heads.npy")
        let heads = try run(["heads", "--model", model, "--length", "10", "--pattern", "induction", "--json", "--npy", h.path])
        #expect(heads.status == 0, "\(heads.output)")
        let hj = try #require(try json(heads.output) as? [String: Any])
        let (hShape, hValues) = try readNPY(h)
        #expect(hShape == [2, 4] && hValues == flat(hj["induction"]))
        let c = dir.appendingPathComponent("copying.npy")
        let copying = try run(["circuits", "copying", "--model", model, "--json", "--npy", c.path])
        #expect(copying.status == 0, "\(copying.output)")
        #expect(try readNPY(c).values == flat(try json(copying.output)))
        // Composition scores: [layer, head, layer, head] per mode, the chosen mode first, as in the JSON.
        let q = dir.appendingPathComponent("composition.safetensors")
        let composition = try run(["circuits", "composition", "--model", model, "--mode", "k", "--json", "--safetensors", q.path])
        #expect(composition.status == 0, "\(composition.output)")
        let cj = try #require(try json(composition.output) as? [String: Any])
        let scores = try SafetensorsFile(path: q.path)
        #expect(scores.metadata["main"] == "k" && scores.metadata["k.axes"] == "sender_layer,sender_head,receiver_layer,receiver_head")
        for mode in ["q", "k", "v"] {
            let t = try scores.tensor(mode)
            #expect(t.shape == [2, 4, 2, 4] && t.scalars == flat(cj[mode]), "\(mode)")
        }
    }

    /// The lens's last row is the model's own output: it must equal `run --save-logits`.
    @Test func theLensLogitsEndWithTheModelsLogits() throws {
        let dir = try scratch()
        let lens = dir.appendingPathComponent("lens.safetensors"), logits = dir.appendingPathComponent("logits.npy")
        let l = try run(["lens", "--model", model, "--prompt", "The cat sat", "--safetensors", lens.path])
        #expect(l.status == 0, "\(l.output)")
        let r = try run(["run", "--model", model, "--prompt", "The cat sat", "--save-logits", logits.path])
        #expect(r.status == 0, "\(r.output)")
        let file = try SafetensorsFile(path: lens.path)
        let t = try file.tensor("logits")
        let (shape, final) = try readNPY(logits)
        #expect(t.shape == [3, shape[0], shape[1]], "\(t.shape) \(shape)")
        let last = Array(t.scalars[(2 * shape[0] * shape[1])...])
        #expect(zip(last, final).allSatisfy { Swift.abs($0 - $1) < 1e-4 })
        let layers = try JSONDecoder().decode([String].self, from: Data((file.metadata["labels.layer"] ?? "").utf8))
        #expect(layers == ["0_pre", "1_pre", "final_post"], "\(layers)")
        #expect(file.metadata["logits.axes"] == "layer,pos,vocab")
    }
}
