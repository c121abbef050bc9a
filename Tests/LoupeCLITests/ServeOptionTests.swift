// `loupe serve` refuses an exposed address without a token, and a weak token, while parsing: the error
// comes with `serve`'s own usage, before any model is fetched or port bound.

import ArgumentParser
import Testing
@testable import loupe

@Suite struct ServeOptionTests {
    @Test(arguments: [
        (["serve", "--host", "0.0.0.0"], "opens the API to the network"),
        (["serve", "--token", "short"], "at least 16 characters"),
        (["serve", "--host", "0.0.0.0", "--token", "has spaces in the middle"], "without spaces"),
    ])
    func accessIsCheckedWhileParsing(_ args: [String], _ expected: String) {
        do {
            let command = try Loupe.parseAsRoot(args)
            Issue.record("\(args) parsed as \(type(of: command))")
        } catch {
            #expect(Loupe.message(for: error).contains(expected), "\(Loupe.message(for: error))")
            #expect(Loupe.fullMessage(for: error).contains("loupe serve"), "the usage shown is serve's")
        }
    }

    @Test func aLongTokenOnAnyAddressParses() throws {
        let command = try Loupe.parseAsRoot(["serve", "--host", "0.0.0.0", "--token", "0123456789abcdef0123"])
        #expect(command is Serve)
    }
}
