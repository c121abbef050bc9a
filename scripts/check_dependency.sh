#!/usr/bin/env bash
# Proves that Loupe can be used as a versioned SwiftPM dependency (SwiftPM refuses packages with unsafe
# build flags from a version requirement): clones the committed HEAD into a temporary folder, tags it
# 0.2.0, and builds and runs a small package that depends on it with `from: "0.2.0"` and runs a hook.
# Usage: scripts/check_dependency.sh   (prints the consumer's output; exit 0 when it ran)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/loupe"
git -C "$work/loupe" tag 0.2.0
mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "file://$work/loupe", from: "0.2.0")],
    targets: [.executableTarget(name: "Consumer", dependencies: [.product(name: "LoupeModels", package: "loupe"),
                                                                        .product(name: "LoupeTensor", package: "loupe")])]
)
SWIFT
cat > "$work/consumer/Sources/Consumer/main.swift" <<'SWIFT'
import LoupeModels
import LoupeTensor

let model = try HookedTransformer.pretrained("austen")
let prompt: ModelInput = "I do not know what you mean, Mr."
let clean = try model.run(prompt)
let ablated = try model.run(prompt, hooks: [.z(1): { z, _ in z[.all, .all, 5] = 0 }])
let change: Tensor = try ablated[0, -1] - clean[0, -1]
let top = try clean.topPredictions(k: 1)[0]
print("top prediction:", try model.toStrings([top.id])[0], "- ablating head 1.5 moves the last logits by up to",
      change.scalars.map { Swift.abs($0) }.max() ?? 0)
SWIFT
cd "$work/consumer"
swift build -c release 2>&1 | grep -E "error|Compiling Consumer|Build" | head -20
./.build/release/Consumer
