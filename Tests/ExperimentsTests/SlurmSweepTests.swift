import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// The job-array script, the run states `status` derives from run folders and the queue, and a
/// run that checkpoints on Slurm's warning signal; the real cluster is in CommandTests.
@Suite struct SlurmSweepTests {
    static func script(runs: [String], root: String = "/scratch/my results", executable: String = "/opt/lorabench") -> SlurmScript {
        SlurmScript(experiment: "demo", root: root, manifestCopy: "\(root)/slurm/demo.yaml", executable: executable, runs: runs,
                    blasThreads: 2, cpusPerTask: 2,
                    request: SlurmRequest(partition: "gpu", time: "1:00:00", memory: "4G", maxParallel: 3, extraArguments: ["--qos=low"]))
    }

    @Test func theScriptAsksForOneTaskPerRunWithTheWarningSignalAndRequeue() {
        let text = Self.script(runs: ["a-s0-111111", "b-s0-222222"]).text
        let directives = text.split(separator: "\n").filter { $0.hasPrefix("#SBATCH ") }.map { String($0.dropFirst("#SBATCH ".count)) }
        #expect(directives == [
            "--job-name=lorabench-demo", "--array=0-1%3", "--output=\"/scratch/my results/slurm/logs/%A_%a.out\"",
            "--error=\"/scratch/my results/slurm/logs/%A_%a.err\"", "--open-mode=append", "--cpus-per-task=2", "--partition=gpu",
            "--time=1:00:00", "--mem=4G", "--requeue", "--signal=B:USR1@120", "--qos=low",
        ])
        #expect(text.contains("runs=(\n  a-s0-111111\n  b-s0-222222\n)"))
        #expect(text.contains("/opt/lorabench run '/scratch/my results/slurm/demo.yaml' --out '/scratch/my results' --only \"$run\" --slurm-task --default-blas-threads 2 &"))
    }

    /// The script under bash with stand-ins for lorabench and scontrol: task 1 starts run 1; a
    /// USR1 to the script reaches the trainer, whose exit 75 makes the script requeue its task.
    @Test func theScriptPassesTheWarningOnAndRequeuesACheckpointedTask() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let trainer = "\(directory)/fake-lorabench"
        try AtomicFile.write("""
        #!/bin/bash
        echo "$@" > '\(directory)/arguments'
        trap 'echo checkpointed > "\(directory)/trainer"; exit 75' USR1
        echo started > '\(directory)/trainer'
        for _ in $(seq 1 600); do sleep 0.05; done
        exit 0

        """, to: trainer)
        try AtomicFile.write("#!/bin/bash\necho \"$@\" > '\(directory)/scontrol'\n", to: "\(directory)/bin/scontrol")
        for file in [trainer, "\(directory)/bin/scontrol"] { chmod(file, 0o755) }
        try AtomicFile.write(Self.script(runs: ["a", "b", "c"], root: directory, executable: trainer).text, to: "\(directory)/array.sbatch")

        let task = try ChildProcess("/bin/bash", ["\(directory)/array.sbatch"],
                                    environment: ["PATH": "\(directory)/bin:/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "42"])
        let started = waitUntil(timeout: 20) { (try? String(contentsOfFile: "\(directory)/trainer", encoding: .utf8)) == "started\n" }
        #expect(started)
        task.signal(SIGUSR1)
        #expect(task.wait().termination == .exited(75))
        #expect(try String(contentsOfFile: "\(directory)/trainer", encoding: .utf8) == "checkpointed\n")
        #expect(try String(contentsOfFile: "\(directory)/scontrol", encoding: .utf8) == "requeue 42_1\n")
        #expect(try String(contentsOfFile: "\(directory)/arguments", encoding: .utf8)
            == "run \(directory)/slurm/demo.yaml --out \(directory) --only b --slurm-task --default-blas-threads 2\n")
    }

    /// Slurm's warning can come while the shell is still between starting the run and learning its
    /// pid (a loaded node, a short time limit): it must still reach the run. The stand-in trainer
    /// warns its own shell the moment it starts; an ignored warning lets it finish with 0 after 30 s.
    /// The window is the shell's few instructions between fork and `trainer=$!`, so without the fix
    /// this fails only when the shell is descheduled there (under load), not on every run.
    @Test func aWarningThatComesAsTheRunStartsStillReachesIt() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let trainer = "\(directory)/fake-lorabench"
        try AtomicFile.write("""
        #!/bin/bash
        trap 'exit 75' USR1
        kill -USR1 "$PPID"
        for _ in $(seq 1 600); do sleep 0.05; done
        exit 0

        """, to: trainer)
        try AtomicFile.write("#!/bin/bash\n", to: "\(directory)/bin/scontrol")
        for file in [trainer, "\(directory)/bin/scontrol"] { chmod(file, 0o755) }
        try AtomicFile.write(Self.script(runs: ["a"], root: directory, executable: trainer).text, to: "\(directory)/array.sbatch")
        let statuses = try (0..<10).map { _ in
            try ChildProcess("/bin/bash", ["\(directory)/array.sbatch"],
                             environment: ["PATH": "\(directory)/bin:/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "42"])
                .wait().termination.shellStatus
        }
        #expect(statuses == Array(repeating: 75, count: 10))
    }

    @Test func statesComeFromTheRunFoldersAndTheQueue() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [lora]\n  ranks: [1, 2, 4, 8]"), file: "m.yaml")
        let ids = manifest.runs.map(\.id)
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/results")
        _ = try runner.execute(runID: ids[0], progress: { _ in .more })
        var failed = try runner.execute(runID: ids[1], progress: { _ in .more })
        (failed.status, failed.reason) = (.failed, "worker was killed by signal 9")
        try AtomicFile.write(try failed.encoded(), to: runner.layout.outcomeFile(ids[1]))

        let record = SlurmRecord(manifest: "m.yaml", manifestCopy: "slurm/m.yaml", blasThreads: 1,
                                 jobs: [.init(jobID: "7", submitted: "", runs: ids), .init(jobID: "9", submitted: "", runs: [ids[1]])])
        let sweep = SlurmSweep(layout: runner.layout, manifest: manifest, record: record)
        let states = try sweep.states(queue: [QueuedTask(jobID: "7", taskIndex: 2, state: "RUNNING"),
                                              QueuedTask(jobID: "9", taskIndex: 0, state: "PENDING")])
        #expect(states.map(\.state) == [.completed, .queued(jobID: "9", task: 0, state: "PENDING"),
                                        .queued(jobID: "7", task: 2, state: "RUNNING"), .missing(checkpointStep: nil)])
        #expect(states.map(\.state.name) == ["completed", "pending", "running", "missing"])
        #expect(try sweep.states(queue: []).map(\.state.needsSubmission) == [false, true, true, true])
        #expect(SweepStatusTable(experiment: "test", states: states).counts
            == "test: 4 runs — 1 completed, 0 diverged, 0 failed, 1 running, 1 pending, 1 missing")
    }

    /// SIGUSR1 mid-run: the run saves a checkpoint at the step it reached and stops; run again,
    /// it continues from there and ends with the numbers of an uninterrupted run.
    @Test func aRunSignalledMidwayCheckpointsAndContinuesToTheSameNumbers() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(steps: 400, sweep: "  variants: [dora]\n  ranks: [4]"), file: "m.yaml")
        let id = manifest.runs[0].id
        let reference = ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/reference")
        _ = try reference.execute(runID: id, progress: { _ in .more })

        let signalled = ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/signalled")
        let sink = CheckpointOnSignal(wrapping: SignalAt(step: 150))
        #expect(throws: RunInterrupted.self) { try signalled.execute(runID: id, progress: sink.handle) }
        let steps = signalled.layout.checkpointSteps(id)
        #expect(steps.count == 1 && steps[0] >= 150 && steps[0] < 400, "checkpoints: \(steps)")
        #expect(try signalled.layout.outcome(of: id) == nil)

        let outcome = try signalled.execute(runID: id, progress: { _ in .more })
        #expect(outcome.status == .completed && outcome.stepsCompleted == 400)
        #expect(try ExperimentSupport.records(signalled.layout.runMetricsFile(id)) == ExperimentSupport.records(reference.layout.runMetricsFile(id)))
        #expect(FileManager.default.contents(atPath: signalled.layout.adapterFile(id)) == FileManager.default.contents(atPath: reference.layout.adapterFile(id)))
    }
}

/// Sends SIGUSR1 to this process when the run reaches `step`, as Slurm would: to the process,
/// not a thread (the test runner's threads block it; some other thread takes it, a little later).
private final class SignalAt: ProgressSink {
    let step: Int

    init(step: Int) { self.step = step }

    func handle(_ event: ProgressEvent) -> ProgressAnswer {
        if case let .step(_, current, _, _) = event, current == step { kill(getpid(), SIGUSR1) }
        return .more
    }
}

/// squeue exits 1 for a job it has forgotten and for a controller that does not answer; only the
/// first means "not queued". Taking the second for an empty queue made `status` call a running
/// task missing and let a test read a task's log before the task had ended.
@Suite struct SqueueExitStatusTests {
    func cluster(printing message: String, status: Int32, in directory: String) throws -> SlurmCluster {
        try AtomicFile.write("#!/bin/bash\necho '\(message)' >&2\nexit \(status)\n", to: "\(directory)/bin/squeue")
        chmod("\(directory)/bin/squeue", 0o755)
        return SlurmCluster(environment: ["PATH": "\(directory)/bin:/usr/bin:/bin"])
    }

    @Test func aForgottenJobIsNotQueued() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try cluster(printing: "slurm_load_jobs error: Invalid job id specified", status: 1, in: directory)
        #expect(try cluster.queuedTasks(of: ["42"]).isEmpty)
    }

    @Test func aControllerThatDoesNotAnswerIsAnErrorNotAnEmptyQueue() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try cluster(printing: "slurm_load_jobs error: Socket timed out on send/recv operation", status: 1, in: directory)
        #expect {
            try cluster.queuedTasks(of: ["42"])
        } throws: { error in
            "\(error)".contains("squeue --noheader --array --jobs 42") && "\(error)".contains("Socket timed out")
        }
    }
}
