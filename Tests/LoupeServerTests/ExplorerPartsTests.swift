import Foundation
import LoupeModels
@testable import LoupeServer
import Testing

/// The explorer's parts without HTTP: the model catalog, jobs' states, error messages.
@Suite struct ExplorerPartsTests {
    @Test func catalogNamesPathsByTheirLastComponent() {
        let known = ModelRegistry.shipped.map(\.name) + ModelRegistry.known.map(\.name)
        let models = ExplorerModel.catalog(extra: ["/data/models/gpt2-tiny", "/other/\(known[0])", known[0], "/data/models/gpt2-tiny"])
        #expect(models.map(\.name) == known + ["gpt2-tiny", "/other/\(known[0])"])
        #expect(models.first { $0.name == "gpt2-tiny" }?.location == "/data/models/gpt2-tiny")
    }

    @Test func jobStates() {
        let queuedThenCancelled = Job(id: "a", kind: "patch")
        #expect(queuedThenCancelled.status.state == "queued" && queuedThenCancelled.isActive)
        queuedThenCancelled.cancel()
        #expect(queuedThenCancelled.status.state == "cancelled" && !queuedThenCancelled.isActive)
        #expect(!queuedThenCancelled.start(), "a job cancelled while queued must not start")

        let stoppedWhileRunning = Job(id: "b", kind: "patch")
        #expect(stoppedWhileRunning.start())
        stoppedWhileRunning.progress(3, 10)
        stoppedWhileRunning.cancel()
        #expect(stoppedWhileRunning.isCancelled && stoppedWhileRunning.status.state == "running")
        stoppedWhileRunning.finish(.failure(CancellationError()))
        #expect(stoppedWhileRunning.status.state == "cancelled")
        #expect(stoppedWhileRunning.status.done == 3 && stoppedWhileRunning.status.total == 10)

        let failed = Job(id: "c", kind: "patch")
        _ = failed.start()
        failed.finish(.failure(APIError.unprocessable("layer 9 is out of range")))
        #expect(failed.status.state == "failed" && failed.status.error == "layer 9 is out of range")
    }

    /// Decoding errors name the field and what it must be.
    @Test(arguments: [
        ("{\"model\": 3}", "'model' must be a string"),
        ("{\"prompt\": \"x\"}", "missing field 'model'"),
        ("{\"model\": \"m\", \"ids\": [1, \"two\"]}", "'ids[1]' must be an integer"),
        ("[1, 2]", "the body must be a JSON object"),
        ("{\"model\": ", "invalid JSON"),
    ])
    func decodingMessages(body: String, message: String) {
        do {
            _ = try JSONDecoder().decode(PredictRequest.self, from: Data(body.utf8))
            Issue.record("\(body) decoded")
        } catch let e as DecodingError {
            let text = APIError.describe(e)
            #expect(text.contains(message), "'\(text)' lacks '\(message)'")
        } catch {
            Issue.record("\(error)")
        }
    }
}
