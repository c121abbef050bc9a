import ArgumentParser
import LoupeModels

struct HooksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hooks", abstract: "List a model's hook points with their shapes.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Positions to show shapes for.")
    var pos: Int = 1

    func run() throws {
        let loaded = try modelOptions.load()
        let (_, cache) = try loaded.model.runWithCache(.tokens([Array(repeating: 0, count: max(1, min(pos, loaded.model.config.nCtx)))]),
                                                       select: .all, options: ForwardOptions(useAttnResult: true))
        for name in cache.names { print(name.description.padding(toLength: 34, withPad: " ", startingAt: 0) + "\(cache[name]!.shape)") }
    }
}
