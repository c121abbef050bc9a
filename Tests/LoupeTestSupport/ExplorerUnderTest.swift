// An explorer server started in-process for tests, on the port it reports once it listens.

import LoupeServer

public enum ExplorerUnderTest {
    /// Starts `server` (configured with port 0 for a free one) and returns the bound port and the task serving;
    /// cancelling the task stops the server.
    public static func start(_ server: ExplorerServer) async throws -> (port: Int, task: Task<Void, Error>) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw RawHTTP.Failure(description: "the explorer did not start")
        }
        return (port, task)
    }
}
