// GGUF, the llama.cpp model format, versions 2 and 3, little-endian:
//
//   magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
//   kv_count × (key string, value type u32, value)            — see GGUFValue.swift
//   tensor_count × (name string, n_dims u32, dims u64 × n_dims, ggml type u32, offset u64)
//   padding to `general.alignment` (default 32), then the data section; each tensor's offset is
//   relative to the data section and a multiple of the alignment.
//
// ggml lists dimensions fastest-varying first (`ne[0]` is the row length), so a tensor stored with dims
// [d_model, d_vocab] is the row-major [d_vocab, d_model] matrix: `shape` is `dims` reversed.
// Reference: ggml/docs/gguf.md and ggml/src/gguf.cpp (which this follows on alignment and validation).

import LoupeTensor

/// One tensor's entry in a GGUF file, validated against the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// Dimensions as stored, fastest-varying first (ggml's `ne`).
    public let dims: [Int]
    /// Byte offset of the data from the start of the data section.
    public let offset: Int
    /// Bytes of (possibly quantized) data.
    public let byteCount: Int

    /// The row-major shape, outermost first: `dims` reversed.
    public var shape: [Int] { dims.reversed() }
    /// The number of elements.
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A validated, memory-mapped GGUF file: metadata, tensor infos, and tensors dequantized on request.
public struct GGUFFile: Sendable {
    public let path: String
    /// The format version, 2 or 3 (they differ only in v3 allowing big-endian files, which Loupe rejects).
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// The metadata keys in file order.
    public let metadataKeys: [String]
    /// The tensors in file order.
    public let tensorInfos: [GGUFTensorInfo]
    /// The data alignment: `general.alignment`, or 32.
    public let alignment: Int
    /// The byte offset in the file where the data section starts.
    public let dataOffset: Int
    private let file: MappedFile
    private let index: [String: Int]

    /// Gives back the resident pages of the header (metadata and tensor table) once what is needed from it has
    /// been copied out: the vocabulary arrays of a 49k-token model take ~1.7 MB there. The file stays mapped and
    /// readable; `metadata` and `tensorInfos` are parsed copies and do not change.
    public func releaseHeaderPages() {
        file.releasePages(0..<dataOffset)
    }

    /// The alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32

    /// Opens and validates a file: header, every metadata value, every tensor info (at most 4 dimensions,
    /// a known ggml type, rows a whole number of blocks, sizes that fit in 64 bits, aligned offsets, data
    /// inside the file). Tensor data is read only by `tensor(_:)`.
    public init(path: String) throws {
        self.path = path
        // Pages are read as tensors are used: a quantized model runs from the mapping, and a file larger
        // than free memory pages in and out as the forward pass walks it.
        file = try MappedFile(path: path, populate: false)
        var c = GGUFCursor(bytes: file.bytes, path: path)

        let magic = Array(file.bytes.prefix(4))
        guard magic == Array("GGUF".utf8.prefix(magic.count)), !magic.isEmpty else {
            throw GGUFError.badMagic(path: path, found: magic)
        }
        _ = try c.read(UInt32.self, "the magic")
        version = try c.read(UInt32.self, "the header (version)")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        let tensorCountOffset = c.offset
        let tensorCount = try c.read(UInt64.self, "the header (tensor_count)")
        // The smallest tensor info is 24 bytes (empty name, no dims), the smallest key-value 13.
        let kvCount = try c.readCount(minimumSize: 13, "the key-value list (kv_count)")
        guard tensorCount <= UInt64(c.remaining / 24) else {
            throw GGUFError.lengthPastEnd(path: path, what: "the tensor list (tensor_count)", length: tensorCount,
                                         offset: tensorCountOffset, fileSize: file.bytes.count)
        }

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        metadata.reserveCapacity(kvCount)
        keys.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try c.readString("the key of metadata entry \(i)")
            let type = try c.readValueType(key: key)
            let value = try c.readValue(type, key: key)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateKey(path: path, key: key)
            }
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        switch metadata["general.alignment"] {
        case nil: alignment = Self.defaultAlignment
        case .uint32(let a)? where a > 0 && a & (a - 1) == 0: alignment = Int(a)
        case let v?: throw GGUFError.badAlignment(path: path, found: "\(v.typeDescription) \(v)")
        }

        // Tensor infos, with offsets checked against the data section once its start is known.
        var infos: [GGUFTensorInfo] = []
        var rawOffsets: [UInt64] = []
        var index: [String: Int] = [:]
        infos.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let name = try c.readString("the name of tensor \(i)")
            let nDims = try c.read(UInt32.self, "the dimension count of tensor '\(name)'")
            guard nDims <= 4 else { throw GGUFError.tooManyDimensions(path: path, tensor: name, count: nDims) }
            var rawDims: [UInt64] = []
            for d in 0..<Int(nDims) { rawDims.append(try c.read(UInt64.self, "dimension \(d) of tensor '\(name)'")) }
            let rawType = try c.read(UInt32.self, "the type of tensor '\(name)'")
            let offset = try c.read(UInt64.self, "the data offset of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownGGMLType(path: path, tensor: name, type: rawType)
            }
            let (dims, byteCount) = try Self.validatedSize(path: path, tensor: name, dims: rawDims, type: type)
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensor(path: path, tensor: name, offset: offset, alignment: alignment)
            }
            guard index.updateValue(infos.count, forKey: name) == nil else {
                throw GGUFError.duplicateTensor(path: path, name: name)
            }
            // The offset is range-checked below; clamp it so the stored Int is defined meanwhile.
            infos.append(GGUFTensorInfo(name: name, type: type, dims: dims, offset: Int(min(offset, UInt64(Int.max))),
                                        byteCount: byteCount))
            rawOffsets.append(offset)
        }

        let (padded, overflow) = c.offset.addingReportingOverflow((alignment - c.offset % alignment) % alignment)
        dataOffset = overflow ? Int.max : padded
        let dataSize = max(0, file.bytes.count - dataOffset)
        for (info, offset) in zip(infos, rawOffsets) {
            guard offset <= UInt64(dataSize), info.byteCount <= dataSize - Int(offset) else {
                throw GGUFError.tensorDataOutOfRange(path: path, tensor: info.name, offset: offset,
                                                     byteCount: info.byteCount, dataSize: dataSize)
            }
        }
        tensorInfos = infos
        self.index = index
    }

    /// Dimensions as `Int` and the byte size, or the error for dims whose product overflows or rows that
    /// are not a whole number of blocks.
    private static func validatedSize(path: String, tensor: String, dims raw: [UInt64],
                                      type: GGMLType) throws -> (dims: [Int], byteCount: Int) {
        var elements = 1
        var dims: [Int] = []
        for d in raw {
            guard let v = Int(exactly: d) else { throw GGUFError.dimensionOverflow(path: path, tensor: tensor, dims: raw) }
            let (p, o) = elements.multipliedReportingOverflow(by: v)
            guard !o else { throw GGUFError.dimensionOverflow(path: path, tensor: tensor, dims: raw) }
            elements = p
            dims.append(v)
        }
        let rowLength = dims.first ?? 1
        guard rowLength % type.blockSize == 0 else {
            throw GGUFError.rowNotBlockMultiple(path: path, tensor: tensor, rowLength: rowLength, type: type)
        }
        let (bytes, o) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
        guard !o else { throw GGUFError.dimensionOverflow(path: path, tensor: tensor, dims: raw) }
        return (dims, bytes)
    }

    /// The tensor names in file order.
    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// The info of the tensor called `name`.
    /// - Throws: `GGUFError.missingTensor`.
    public func info(_ name: String) throws -> GGUFTensorInfo {
        guard let i = index[name] else { throw GGUFError.missingTensor(path: path, name: name) }
        return tensorInfos[i]
    }

    /// Whether the file holds a tensor called `name`.
    public func hasTensor(_ name: String) -> Bool { index[name] != nil }

    /// The tensor called `name`, dequantized to Float32, with the row-major shape (`dims` reversed):
    /// a token embedding stored with dims [d_model, d_vocab] comes back as [d_vocab, d_model].
    /// Values equal gguf-py's `gguf.quants.dequantize` bit for bit.
    /// - Throws: `GGUFError.missingTensor`, or `.unsupportedGGMLType` for a type other than F32, F16, BF16,
    ///   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K.
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        guard info.type.isDequantizable else {
            throw GGUFError.unsupportedGGMLType(path: path, tensor: name, type: info.type)
        }
        let n = info.elementCount
        var out = uninitializedFloats(n)
        if n > 0, let base = file.bytes.baseAddress {
            out.withUnsafeMutableBufferPointer { dst in
                // `dst` has n > 0 elements, so its base address exists.
                guard let d = dst.baseAddress else { return }
                dequantizeGGML(info.type, from: base + dataOffset + info.offset, to: d, count: n)
            }
        }
        return try Tensor(shape: info.shape, scalars: out)
    }

    /// A 2-D tensor read in place, without a copy: `[rows, columns]` is the row-major shape (`dims`
    /// reversed), so a linear layer stored as PyTorch's `[out, in]` has a row per output feature.
    /// - Throws: `GGUFError.missingTensor`; `.unsupportedGGMLType` for a type the kernels cannot read;
    ///   `.notAMatrix` for a tensor that is not 2-D.
    public func matrix(_ name: String) throws -> QuantizedMatrix {
        let info = try info(name)
        guard QuantizedMatrix.supports(info.type) else {
            throw GGUFError.unsupportedGGMLType(path: path, tensor: name, type: info.type)
        }
        guard info.dims.count == 2 else {
            throw GGUFError.notAMatrix(path: path, tensor: name, dims: info.dims)
        }
        // init validated that the data lies inside the file.
        guard let start = file.bytes.baseAddress else { throw GGUFError.missingTensor(path: path, name: name) }
        return QuantizedMatrix(type: info.type, rows: info.dims[1], columns: info.dims[0],
                               base: start + dataOffset + info.offset, owner: file)
    }
}
