import Foundation
import LoRABenchTensorIO
import LoRABenchResults
import Yams

// Whether a folder may receive a sweep's results is decided by its manifest.yaml, so the check
// lives with the manifest rather than in the results layout, which knows nothing of manifests.
extension ResultsLayout {
    /// Throws `SweepError.notResultsFolder` unless the root is missing, empty (dot files aside),
    /// or holds this experiment's results: a manifest.yaml that is a LoRABench manifest and does
    /// not name another experiment. So `run --out` never writes over a user's own files.
    public func checkHoldsResults(of experiment: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw SweepError.notResultsFolder(directory: root, reason: "a file, not a folder") }
        let entries = try FileSystem.contents(of: root).filter { !$0.hasPrefix(".") }
        guard !entries.isEmpty else { return }
        guard let data = FileManager.default.contents(atPath: manifestCopy) else {
            throw SweepError.notResultsFolder(directory: root, reason: "the folder holds files (\(entries.sorted().prefix(3).joined(separator: ", "))) but no manifest.yaml, so it is not a LoRABench results folder")
        }
        let copy = (try? Yams.load(yaml: String(decoding: data, as: UTF8.self))) as? [String: Any]
        guard let copy, Manifest.requiredKeys.allSatisfy({ copy[$0] != nil }) else {
            throw SweepError.notResultsFolder(directory: root, reason: "its manifest.yaml is not a LoRABench manifest (it needs the keys \(Manifest.requiredKeys.joined(separator: ", ")))")
        }
        if let recorded = copy["experiment"] as? String, recorded != experiment {
            throw SweepError.notResultsFolder(directory: root, reason: "it holds the results of experiment '\(recorded)', not '\(experiment)'")
        }
    }
}

extension ResultsLayout {
    /// The classes of the task the results were run with, from their manifest copy: what
    /// `lorabench compare` checks predictions.csv against. Nil without a manifest copy (a folder
    /// put together by hand) or for a regression task.
    public func taskLabelCount() throws -> Int? {
        guard let data = FileManager.default.contents(atPath: manifestCopy) else { return nil }
        return try Manifest(yaml: String(decoding: data, as: UTF8.self), file: manifestCopy).task.labelCount
    }

    /// The eval metrics of the task the results were run with, each with its better direction,
    /// from their manifest copy (what `compare --steps-to --metric` may name); nil without one.
    public func taskEvalMetrics() throws -> [EvalMetric]? {
        guard let data = FileManager.default.contents(atPath: manifestCopy) else { return nil }
        return try Manifest(yaml: String(decoding: data, as: UTF8.self), file: manifestCopy).task.evalMetrics
    }
}
