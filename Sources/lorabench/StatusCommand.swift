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
        if !cluster.isAvailable { print(Self.queueUnread) }
    }

    static let queueUnread = "(sbatch is not on PATH, so Slurm's queue was not read: runs without an outcome show as unfinished, "
        + "not as pending, running or missing; run this where Slurm is)"
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
        let cluster = SlurmCluster()
        let states = try sweep.collect(cluster: cluster.isAvailable ? cluster : nil)
        let table = SweepStatusTable(experiment: sweep.manifest.experiment, states: states)
        print("\(sweep.layout.metricsFile)\n\(sweep.layout.summaryFile)\n\(table.counts)")
        func list(_ runs: [(run: RunSpec, state: RunState)]) -> String {
            runs.map { "  \($0.run.id): \($0.state.name)" + ($0.state.detail.isEmpty ? "" : " (\($0.state.detail))") }.joined(separator: "\n")
        }
        // Queued runs are still on their way: collect again once they end.
        let underway = states.filter { if case .queued = $0.state { true } else { false } }
        if !underway.isEmpty {
            print(list(underway))
            print("\(underway.count) run(s) still in Slurm's queue: collect again when they have ended (lorabench status \(results))")
        }
        let unknown = states.filter { if case .unfinished = $0.state { true } else { false } }
        if !unknown.isEmpty {
            print(list(unknown))
            print(StatusCommand.queueUnread)
        }
        let unfinished = states.filter { $0.state.needsSubmission }
        if !unfinished.isEmpty {
            print(list(unfinished))
            print("resubmit exactly these with:\n  \(sweep.resubmitCommand)")
        }
    }
}
