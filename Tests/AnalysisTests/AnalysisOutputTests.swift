import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchAnalysis
import Testing

/// Where the analyses write: names that become file names, and the folder's index.html.
@Suite struct AnalysisOutputTests {
    /// `analyze spectrum --name '../../victim' --out DIR` wrote victim.csv two folders above DIR.
    @Test(arguments: ["../../victim", "sub/name", "..", ""])
    func aSpectrumNameThatIsNotAFileNameIsRefused(name: String) {
        #expect { try AnalysisReports.spectrum([], name: name) } throws: {
            "\($0)" == "--name '\(name)' cannot name files; allowed: letters, digits, '.', '_' and '-' (not '.' or '..')"
        }
        #expect(throws: Never.self) { try AnalysisReports.spectrum([], name: "delta-weight_r8.v2") }
    }

    /// `analyze … --out DIR` overwrote the user's own DIR/index.html without --force.
    @Test func anIndexThatAnalyzeDidNotWriteIsKeptWithoutForce() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-index-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let index = AnalysisIndex.path(in: directory)

        // No index yet, then one analyze wrote: rebuilt freely.
        try AnalysisIndex.check(directory: directory, overwrite: false)
        try AnalysisIndex.write(directory: directory)
        try AnalysisIndex.check(directory: directory, overwrite: false)

        try Data("<html><body>my own notes</body></html>\n".utf8).write(to: URL(fileURLWithPath: index))
        #expect { try AnalysisIndex.check(directory: directory, overwrite: false) } throws: {
            "\($0)" == "\(index): the file exists; pass --force to overwrite it, or choose another path"
        }
        try AnalysisIndex.check(directory: directory, overwrite: true)
    }
}
