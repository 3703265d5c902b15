import ArgumentParser
import LoRABenchExperiments

/// `lorabench status DIR`: every run of a sweep submitted with --slurm, and counts.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every run of a sweep submitted with --slurm: completed, diverged, failed, running, pending or missing."
    )

    @Argument(help: "The results directory the sweep was submitted into.")
    var results: String

    func run() throws {
        let sweep = try SlurmSweep.open(directory: results)
        let cluster = SlurmCluster()
        let states = try sweep.states(cluster: cluster.isAvailable ? cluster : nil)
        print(SweepStatusTable(experiment: sweep.manifest.experiment, states: states).text)
        if !cluster.isAvailable { print("(sbatch is not on PATH: queued runs show as missing)") }
    }
}

/// `lorabench collect DIR`: the experiment's CSVs rebuilt from the run folders of a Slurm sweep.
struct CollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Rebuild metrics.csv and summary.csv of a sweep submitted with --slurm from its run folders; report what is missing."
    )

    @Argument(help: "The results directory the sweep was submitted into.")
    var results: String

    func run() throws {
        let sweep = try SlurmSweep.open(directory: results)
        let states = try sweep.collect()
        let table = SweepStatusTable(experiment: sweep.manifest.experiment, states: states)
        print("\(sweep.layout.metricsFile)\n\(sweep.layout.summaryFile)\n\(table.counts)")
        let unfinished = states.filter { $0.state.needsSubmission }
        if !unfinished.isEmpty {
            print(unfinished.map { "  \($0.run.id): \($0.state.name)" + ($0.state.detail.isEmpty ? "" : " (\($0.state.detail))") }.joined(separator: "\n"))
            print("resubmit exactly these with:\n  \(sweep.resubmitCommand)")
        }
    }
}
