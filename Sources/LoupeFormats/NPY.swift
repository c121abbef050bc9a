// NumPy .npy (format version 1.0): magic "\x93NUMPY", version, a little-endian u16 header length,
// a Python-literal header dict padded with spaces to a multiple of 64 bytes, then the raw data.

import Foundation
import LoupeTensor

/// Writes a Float32 tensor as a little-endian, C-order `.npy` file.
public func writeNPY(_ tensor: Tensor, to url: URL) throws {
    let dims = tensor.shape.map(String.init)
    let shape = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: Array(header.utf8))
    tensor.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
    try writeAtomically(data, to: url)
}
