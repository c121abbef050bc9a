// The ggml tensor element types, with their raw values as stored in a GGUF tensor info.
// Reference: ggml/include/ggml.h (`enum ggml_type`) and gguf-py constants.py (`GGML_QUANT_SIZES`).

/// A ggml element type. Quantized types store `blockSize` consecutive elements of a row in
/// `bytesPerBlock` bytes; plain types have a block of one element.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case F32 = 0, F16 = 1
    case Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9
    case Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15
    case IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23
    case I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28
    case IQ1_M = 29, BF16 = 30
    case TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41

    /// Elements per block (`QK_K` = 256 for the K-quants and most IQ types).
    public var blockSize: Int { Self.sizes(self).block }

    /// Bytes per block (ggml's `type_size`).
    public var bytesPerBlock: Int { Self.sizes(self).bytes }

    /// Whether `GGUFFile.tensor(_:)` can dequantize this type to Float32.
    public var isDequantizable: Bool {
        switch self {
        case .F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q4_K, .Q5_K, .Q6_K: return true
        default: return false
        }
    }

    /// The ggml name, as gguf-py spells it: `Q4_K`, `BF16`.
    public var description: String {
        switch self {
        case .F32: return "F32"
        case .F16: return "F16"
        case .Q4_0: return "Q4_0"
        case .Q4_1: return "Q4_1"
        case .Q5_0: return "Q5_0"
        case .Q5_1: return "Q5_1"
        case .Q8_0: return "Q8_0"
        case .Q8_1: return "Q8_1"
        case .Q2_K: return "Q2_K"
        case .Q3_K: return "Q3_K"
        case .Q4_K: return "Q4_K"
        case .Q5_K: return "Q5_K"
        case .Q6_K: return "Q6_K"
        case .Q8_K: return "Q8_K"
        case .IQ2_XXS: return "IQ2_XXS"
        case .IQ2_XS: return "IQ2_XS"
        case .IQ3_XXS: return "IQ3_XXS"
        case .IQ1_S: return "IQ1_S"
        case .IQ4_NL: return "IQ4_NL"
        case .IQ3_S: return "IQ3_S"
        case .IQ2_S: return "IQ2_S"
        case .IQ4_XS: return "IQ4_XS"
        case .I8: return "I8"
        case .I16: return "I16"
        case .I32: return "I32"
        case .I64: return "I64"
        case .F64: return "F64"
        case .IQ1_M: return "IQ1_M"
        case .BF16: return "BF16"
        case .TQ1_0: return "TQ1_0"
        case .TQ2_0: return "TQ2_0"
        case .MXFP4: return "MXFP4"
        case .NVFP4: return "NVFP4"
        case .Q1_0: return "Q1_0"
        }
    }

    private static let QK_K = 256

    private static func sizes(_ t: GGMLType) -> (block: Int, bytes: Int) {
        switch t {
        case .F32: return (1, 4)
        case .F16: return (1, 2)
        case .Q4_0: return (32, 2 + 16)
        case .Q4_1: return (32, 2 + 2 + 16)
        case .Q5_0: return (32, 2 + 4 + 16)
        case .Q5_1: return (32, 2 + 2 + 4 + 16)
        case .Q8_0: return (32, 2 + 32)
        case .Q8_1: return (32, 4 + 4 + 32)
        case .Q2_K: return (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4)
        case .Q3_K: return (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12)
        case .Q4_K: return (QK_K, 2 + 2 + QK_K / 2 + 12)
        case .Q5_K: return (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12)
        case .Q6_K: return (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16)
        case .Q8_K: return (QK_K, 4 + QK_K + QK_K / 8)
        case .IQ2_XXS: return (QK_K, 2 + QK_K / 4)
        case .IQ2_XS: return (QK_K, 2 + QK_K / 4 + QK_K / 32)
        case .IQ3_XXS: return (QK_K, 2 + QK_K / 4 + QK_K / 8)
        case .IQ1_S: return (QK_K, 2 + QK_K / 8 + QK_K / 16)
        case .IQ4_NL: return (32, 2 + 16)
        case .IQ3_S: return (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4)
        case .IQ2_S: return (QK_K, 2 + QK_K / 4 + QK_K / 16)
        case .IQ4_XS: return (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64)
        case .I8: return (1, 1)
        case .I16: return (1, 2)
        case .I32: return (1, 4)
        case .I64: return (1, 8)
        case .F64: return (1, 8)
        case .IQ1_M: return (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32)
        case .BF16: return (1, 2)
        case .TQ1_0: return (QK_K, 2 + 4 * 13)
        case .TQ2_0: return (QK_K, 2 + 64)
        case .MXFP4: return (32, 1 + 16)
        case .NVFP4: return (64, 4 + 32)
        case .Q1_0: return (128, 2 + 16)
        }
    }
}
