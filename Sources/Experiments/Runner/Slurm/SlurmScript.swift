import Foundation
import LoRABenchTensorIO
import LoRABenchResults

/// The job-array script: task i runs `lorabench run COPY --only RUN_i` in the background and
/// passes Slurm's warning signal on to it; a run that checkpointed on the warning exits 75, and
/// the script requeues its task, which then continues from that checkpoint.
public struct SlurmScript {
    public var experiment: String
    public var root: String
    public var manifestCopy: String
    public var executable: String
    public var runs: [String]
    public var blasThreads: Int
    public var cpusPerTask: Int
    public var request: SlurmRequest
    /// Which of the sweep's arrays this is, when its runs are more than the cluster's MaxArraySize.
    public var arrayNumber = 1
    public var arrayCount = 1

    /// The exit status of a run that saved a checkpoint and stopped (BSD's EX_TEMPFAIL).
    public static let checkpointedStatus: Int32 = 75

    /// The script; every value in it was validated (`SlurmRequest.validate`, the --out check in
    /// `SlurmSweep.submit`), and each `#SBATCH` value is quoted as sbatch reads it.
    public var text: String {
        // In a log file name Slurm expands %A and %a, and reads "%%" as a "%" of the folder's own.
        let logs = root.replacingOccurrences(of: "%", with: "%%") + "/slurm/logs/%A_%a"
        var directives = [
            "--job-name=" + sbatchQuoted("lorabench-\(experiment)"),
            "--array=0-\(max(0, runs.count - 1))" + (request.maxParallel.map { "%\($0)" } ?? ""),
            "--output=" + sbatchQuoted("\(logs).out"),
            "--error=" + sbatchQuoted("\(logs).err"),
            "--open-mode=append",
            "--cpus-per-task=\(cpusPerTask)",
        ]
        if let partition = request.partition { directives.append("--partition=" + sbatchQuoted(partition)) }
        if let time = request.time { directives.append("--time=" + sbatchQuoted(time)) }
        if let memory = request.memory { directives.append("--mem=" + sbatchQuoted(memory)) }
        directives += ["--requeue", "--signal=B:USR1@\(request.warningSeconds)"] + request.extraArguments
        let command = [ChildProcess.shellQuoted(executable), "run", ChildProcess.shellQuoted(manifestCopy), "--out", ChildProcess.shellQuoted(root), "--only", "\"$run\"",
                       "--slurm-task", "--default-blas-threads", String(blasThreads)].joined(separator: " ")
        let part = arrayCount == 1 ? "" : ", array \(arrayNumber) of \(arrayCount) (the cluster's MaxArraySize caps an array's tasks)"
            + (arrayNumber > 1 && request.maxParallel != nil ? ", submitted to start once array \(arrayNumber - 1) has ended" : "")
        return """
        #!/bin/bash
        # LoRABench experiment \(experiment)\(part): \(runs.count) run(s); array task i trains run i of the list below.
        \(directives.map { "#SBATCH \($0)" }.joined(separator: "\n"))
        set -uo pipefail
        runs=(
        \(runs.map { "  \(ChildProcess.shellQuoted($0))" }.joined(separator: "\n"))
        )
        run="${runs[$SLURM_ARRAY_TASK_ID]}"
        # Slurm's warning before the time limit reaches this shell (B:): pass it on, so the run
        # saves a checkpoint and exits \(Self.checkpointedStatus). The trap is set before the run starts;
        # a warning that comes before this shell has the run's pid is passed on once it has it.
        trainer=""
        warned=0
        trap 'warned=1; if [ -n "$trainer" ]; then kill -USR1 "$trainer" 2>/dev/null; fi' USR1
        \(command) &
        trainer=$!
        if [ "$warned" -eq 1 ]; then kill -USR1 "$trainer" 2>/dev/null; fi
        status=0
        while kill -0 "$trainer" 2>/dev/null; do
          wait "$trainer"
          status=$?
        done
        if [ "$status" -eq \(Self.checkpointedStatus) ]; then
          # Requeued, the task continues the run from the checkpoint it just saved.
          scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
        fi
        exit "$status"

        """
    }
}
