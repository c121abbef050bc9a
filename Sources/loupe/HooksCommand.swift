import ArgumentParser
import LoupeModels

struct HooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hooks", abstract: "List a model's hook points with their shapes.",
        discussion: """
            Example:
              loupe hooks --model smollm2-135m --pos 4
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .unconditional, help: "Positions to show shapes for.", transform: Count.positive)
    var pos: Int = 1

    func run() throws {
        let loaded = try modelOptions.load(encoders: true)
        let (_, cache) = try loaded.model.runWithCache(.tokens([Array(repeating: 0, count: max(1, min(pos, loaded.model.config.nCtx)))]),
                                                       select: .all, options: ForwardOptions(useAttnResult: true))
        let width = (cache.names.map(\.description.count).max() ?? 0) + 2
        for name in cache.names {
            print(name.description.padding(toLength: width, withPad: " ", startingAt: 0) + (cache[name].map { "\($0.shape)" } ?? ""))
        }
    }
}
