// Helpers the analysis commands share: token arguments, grids, axis labels, nested JSON.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeRender
import LoupeTensor

/// A token given on the command line: an id, or text that must be exactly one token. Says on stderr which
/// token it resolved to, with a caution when a word lacks the leading space it has inside a sentence.
func singleToken(_ value: String, _ option: String, _ loaded: LoadedModel) throws -> Int {
    let id: Int
    do { id = try loaded.model.singleToken(value) } catch let error as ModelError { throw ValidationError("\(option): \(error)") }
    FileHandle.standardError.write(Data("\(option) \(loaded.tokenText(id).quotedForDisplay) = token \(id)\n".utf8))
    if let caution = loaded.model.tokenCaution(value) {
        FileHandle.standardError.write(Data("warning: \(option): \(caution); give \((" " + value).quotedForDisplay) if that is the one meant\n".utf8))
    }
    return id
}

/// A `[rows, columns]` grid of numbers with labels, for terminal tables: each number on its colour
/// (24-bit) when colours are on.
func printGrid(rowLabels: [String], columnLabels: [String], values: (Int, Int) -> Float, format: String = "%7.3f") {
    let flat = rowLabels.indices.flatMap { r in columnLabels.indices.map { values(r, $0) } }
    guard let grid = try? TerminalHeatmap(rowLabels: rowLabels, columnLabels: columnLabels, values: flat, format: format) else { return }
    print(grid.render(colored: terminalColors))
}

/// `L0`, `L1`, … and `H0`, `H1`, …: axis labels of layer × head grids.
func layerLabels(_ n: Int) -> [String] { (0..<n).map { "L\($0)" } }
func headLabels(_ n: Int) -> [String] { (0..<n).map { "H\($0)" } }

/// A tensor as nested JSON arrays.
struct AnyNested: Encodable {
    let tensor: Tensor
    init(_ t: Tensor) { tensor = t }
    func encode(to encoder: Encoder) throws {
        var container = encoder.unkeyedContainer()
        try encodeLevel(&container, dims: tensor.shape, offset: 0)
    }
    private func encodeLevel(_ c: inout UnkeyedEncodingContainer, dims: [Int], offset: Int) throws {
        if dims.count == 1 {
            for i in 0..<dims[0] { try c.encode(tensor.scalars[offset + i]) }
            return
        }
        let stride = dims.dropFirst().reduce(1, *)
        for i in 0..<dims[0] {
            var nested = c.nestedUnkeyedContainer()
            try encodeLevel(&nested, dims: Array(dims.dropFirst()), offset: offset + i * stride)
        }
    }
}
