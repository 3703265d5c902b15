import Foundation
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchExperiments

/// Small manifests and results folders shared by the experiment tests.
package enum ExperimentSupport {
    /// A synthetic task small enough that a 60-step run takes milliseconds in a debug build.
    package static let tinyTask = """
    task:
      name: synthetic
      input_dim: 16
      hidden_dim: 16
      output_dim: 8
      true_rank: 4
      train_size: 256
      eval_size: 64
    """

    /// A manifest with the tiny task; `training` and `sweep` are YAML blocks (indented by 2).
    package static func manifest(experiment: String = "test", steps: Int = 60, learningRate: String = "1e-2",
                         sweep: String = "  variants: [lora]\n  ranks: [2, 4]") -> String {
        """
        experiment: \(experiment)
        \(tinyTask)
        training:
          learning_rate: \(learningRate)
          steps: \(steps)
          batch_size: 32
          eval_interval: 20
          log_interval: 10
        sweep:
        \(sweep)

        """
    }

    package static func temporaryDirectory(_ label: String = #function) throws -> String {
        let path = NSTemporaryDirectory() + "lorabench-\(label.filter(\.isLetter))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `text` as a manifest file in `directory` and returns its path.
    package static func write(_ text: String, to directory: String, name: String = "manifest.yaml") throws -> String {
        let path = "\(directory)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs a manifest in this process into `directory/results`.
    @discardableResult
    package static func run(_ manifest: Manifest, into directory: String, resume: Bool = false) throws -> [RunOutcome] {
        try ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/results")
            .run(options: SweepOptions(resume: resume), progress: Silent())
    }

    /// A CSV file's records, optionally without the timing metric (the one value that is
    /// allowed to differ between two runs of the same manifest).
    package static func records(_ path: String, droppingTiming: Bool = true) throws -> [[String]] {
        let table = try CSVTable(contentsOf: path, producer: "test")
        let metric = table.header.firstIndex(of: "metric")
        return [table.header] + table.records.map(\.fields).filter { fields in
            !(droppingTiming && metric.map { fields[$0] == "elapsed_seconds" } ?? false)
        }
    }

    /// summary.csv without the columns a machine measures: time, speed and peak memory.
    package static func summaryWithoutTiming(_ path: String) throws -> [[String]] {
        let measured = ["wall_seconds", "steps_per_second", "training_seconds", "train_tokens_per_second", "peak_rss_mb"]
        let table = try CSVTable(contentsOf: path, producer: "test")
        let keep = table.header.indices.filter { !measured.contains(table.header[$0]) }
        return ([table.header] + table.records.map(\.fields)).map { fields in keep.map { fields[$0] } }
    }
}

/// A progress sink that shows nothing.
package final class Silent: ProgressSink {
    package init() {}
    package func handle(_ event: ProgressEvent) -> ProgressAnswer { .more }
}

/// Polls `condition` every `interval` seconds (5 ms: a file check); false if it never held within
/// `timeout` seconds. A condition that starts a process (squeue) polls less often, so that the
/// polling does not take the cores from the jobs it waits for.
package func waitUntil(timeout: Double, interval: Double = 0.005, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(useconds_t(interval * 1_000_000))
    }
    return false
}
