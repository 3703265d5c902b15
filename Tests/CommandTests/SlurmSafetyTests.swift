import Foundation
@testable import LoRABenchExperiments
import LoRABenchTensorIO
import LoRABenchTestSupport
import Testing

/// `run --slurm`, `status` and `collect` against hostile or unlucky input (issue 25): values that
/// would inject shell lines into the job script, a job record that points outside its folder or
/// holds impossible values, a sweep larger than the cluster's MaxArraySize, and a collect while
/// tasks still run. Slurm itself is played by small scripts (`FakeSlurm`), so these run anywhere.
@Suite struct SlurmSafetyTests {
    static let sweep = "  variants: [lora]\n  ranks: [1, 2, 4]\n  seeds: [0, 1]"

    // MARK: 1. Shell injection through --slurm

    /// Each option that reaches an `#SBATCH` line, given a newline and a command after it: the
    /// dry run refuses it with an error naming the option, and prints no script.
    @Test(arguments: [
        ["--partition", "debug\ntouch INJECTED"], ["--time", "1:00:00\ntouch INJECTED"], ["--mem", "4G\ntouch INJECTED"],
        ["--sbatch-arg=--qos=low\ntouch INJECTED"], ["--sbatch-arg=--array=0-3"],
    ])
    func aValueThatWouldInjectALineIsRefusedNamingTheOption(_ option: [String]) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(ExperimentSupport.manifest(sweep: Self.sweep), to: directory)
        let result = try LorabenchProcess.failure(["run", manifest, "--slurm", "--dry-run", "--out", "\(directory)/results"] + option)
        let name = String(option[0].prefix { $0 != "=" })
        #expect(result.status != 0)
        #expect(result.errors.contains("\(name): found '"), "\(result.errors)")
        #expect(result.errors.contains("allowed: "), "\(result.errors)")
    }

    @Test func aFolderWithANewlineIsRefusedAndNothingIsWritten() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(ExperimentSupport.manifest(sweep: Self.sweep), to: directory)
        let slurm = try FakeSlurm(directory: directory, maxArraySize: 1001)
        #expect {
            try SlurmSweep.submit(manifestPath: manifest, outputDirectory: "\(directory)/a\ntouch INJECTED", request: SlurmRequest(),
                                  resume: false, dryRun: false, executable: "/opt/lorabench", cluster: slurm.cluster)
        } throws: { error in
            "\(error)".hasPrefix("--out: found '") && "\(error)".contains("\\ntouch INJECTED")
        }
        #expect(slurm.sbatchCalls.isEmpty)
    }

    /// An `--out` with a space, a quote, a '#' and a '%': each `#SBATCH` value is one argument
    /// as sbatch splits the line (`SBATCHDirectives`), and the log names keep the folder's '%'.
    @Test func pathsInSBATCHLinesAreQuotedAsSbatchReadsThem() throws {
        let root = "/scratch/my \"odd\" #1 100% results"
        let script = SlurmScript(experiment: "demo", root: root, manifestCopy: "\(root)/slurm/demo.yaml", executable: "/opt/lorabench",
                                 runs: ["a-s0-111111"], blasThreads: 1, cpusPerTask: 1, request: SlurmRequest(partition: "gpu"))
        let arguments = SBATCHDirectives.arguments(of: script.text)
        #expect(arguments.contains("--output=\(root.replacingOccurrences(of: "%", with: "%%"))/slurm/logs/%A_%a.out"), "\(arguments)")
        #expect(arguments.contains("--error=\(root.replacingOccurrences(of: "%", with: "%%"))/slurm/logs/%A_%a.err"), "\(arguments)")
        #expect(arguments.contains("--partition=gpu"))
        #expect(arguments.suffix(2) == ["--requeue", "--signal=B:USR1@120"], "\(arguments)")
    }

    // MARK: 3. Paths read from jobs.json stay inside the results folder

    /// A secret of several lines outside the results folder, and three ways jobs.json can point at
    /// it: each is an error naming jobs.json and manifest_copy, quoting none of the secret.
    @Test(arguments: ["../secret.yaml", "ABSOLUTE", "slurm/link.yaml"])
    func aManifestCopyOutsideTheResultsFolderIsRefused(_ copy: String) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A valid manifest, so that following the path would succeed.
        let secret = try ExperimentSupport.write(ExperimentSupport.manifest(sweep: Self.sweep) + "# secret line two\n", to: directory, name: "secret.yaml")
        let root = "\(directory)/results"
        try FileManager.default.createDirectory(atPath: "\(root)/slurm", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/slurm/link.yaml", withDestinationPath: secret)
        try writeRecord(root: root, manifestCopy: copy == "ABSOLUTE" ? secret : copy)
        #expect {
            try SlurmSweep.open(directory: root)
        } throws: { error in
            "\(error)".contains("\(root)/slurm/jobs.json: field 'manifest_copy'") && !"\(error)".contains("secret line two")
        }
    }

    /// A file that is not YAML at all, read as a manifest: the error quotes less than its first line.
    @Test func aManifestErrorQuotesAtMostOneLineOfTheFile() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lines = (0..<50).map { "user\($0):x:\($0):\($0):User number \($0):/home/user\($0):/bin/bash" }
        let file = try ExperimentSupport.write(lines.joined(separator: "\n") + "\n", to: directory, name: "passwd")
        #expect {
            try Manifest.load(path: file)
        } throws: { error in
            "\(error)".contains("user0:x:0") && !"\(error)".contains("user1:x:1") && "\(error)".count < 400
        }
    }

    // MARK: 6. Every field of jobs.json is validated; collect never loses runs

    @Test(arguments: [
        ("blas_threads", "0"), ("blas_threads", "-4"), ("blas_threads", "\"two\""), ("blas_threads", "1e30"),
        ("job_id", "\"--all\""), ("submitted", "\"yesterday\""), ("runs", "[\"../../victim\"]"), ("manifest", "\"\""),
    ])
    func aJobRecordFieldOutOfRangeIsAnErrorNamingFileAndField(_ field: String, _ value: String) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = try finishedSweep(in: directory, finishing: 2)
        var json = try String(contentsOfFile: "\(root)/slurm/jobs.json", encoding: .utf8)
        let pattern = try Regex("\"\(field)\" : (\"[^\"]*\"|\\[[^\\]]*\\]|-?[0-9]+)")
        json = json.replacing(pattern, maxReplacements: 1) { _ in "\"\(field)\" : \(value)" }
        try json.write(toFile: "\(root)/slurm/jobs.json", atomically: true, encoding: .utf8)
        #expect {
            try SlurmSweep.open(directory: root)
        } throws: { error in
            "\(error)".hasPrefix("\(root)/slurm/jobs.json: field '") && "\(error)".contains(field) && "\(error)".contains("allowed: ")
        }
    }

    /// jobs.json changed under a finished sweep (blas_threads 0, or a valid count the runs did not
    /// use: every run id changes), or a run's outcome lost: collect refuses, summary.csv and
    /// metrics.csv keep every run, and the message says what to do.
    @Test(arguments: ["blas_threads 0", "blas_threads 2", "outcome removed"])
    func collectNeverWritesAnAggregateWithFewerRuns(_ damage: String) throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = try finishedSweep(in: directory, finishing: 6)
        let sweep = try SlurmSweep.open(directory: root)
        // An empty queue, whatever Slurm this machine has.
        let slurm = try FakeSlurm(directory: directory, maxArraySize: 1001)
        #expect(try slurm.run(["collect", root]).status == 0)
        let summary = try Data(contentsOf: URL(fileURLWithPath: "\(root)/summary.csv"))
        let metrics = try Data(contentsOf: URL(fileURLWithPath: "\(root)/metrics.csv"))
        #expect(try ExperimentSupport.records("\(root)/summary.csv").count == 1 + 6)
        switch damage {
        case "outcome removed": try FileManager.default.removeItem(atPath: sweep.layout.outcomeFile(sweep.manifest.runs[3].id))
        default: try writeRecord(root: root, blasThreads: Int(damage.split(separator: " ")[1])!, runs: sweep.manifest.runs.map(\.id))
        }
        let result = try slurm.run(["collect", root])
        #expect(result.status != 0)
        #expect(result.errors.contains(damage == "blas_threads 0" ? "field 'blas_threads'" : "would lose"), "\(result.errors)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(root)/summary.csv")) == summary)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(root)/metrics.csv")) == metrics)
        if damage == "outcome removed" { #expect(result.errors.contains("delete \(root)/summary.csv")) }
    }

    // MARK: U1. Sweeps larger than MaxArraySize

    /// Six runs on a cluster whose arrays hold two tasks (a fake sbatch refuses a larger one, as
    /// Slurm does): three arrays of two, recorded in jobs.json in run order; with --max-parallel
    /// each array starts after the one before.
    @Test func aSweepLargerThanMaxArraySizeIsSplitIntoSeveralArrays() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifestPath = try ExperimentSupport.write(ExperimentSupport.manifest(sweep: Self.sweep), to: directory)
        let slurm = try FakeSlurm(directory: directory, maxArraySize: 2)
        let root = "\(directory)/results"
        _ = try SlurmSweep.submit(manifestPath: manifestPath, outputDirectory: root, request: SlurmRequest(maxParallel: 1), resume: false,
                                  dryRun: false, executable: "/opt/lorabench", cluster: slurm.cluster)
        let sweep = try SlurmSweep.open(directory: root)
        #expect(sweep.record.jobs.map(\.jobID) == ["101", "102", "103"])
        #expect(sweep.record.jobs.map(\.runs.count) == [2, 2, 2])
        #expect(sweep.record.jobs.flatMap(\.runs) == sweep.manifest.runs.map(\.id))
        #expect(slurm.sbatchCalls.map { $0.contains("--dependency=afterany:") } == [false, true, true])
        #expect(slurm.sbatchCalls.last?.contains("--dependency=afterany:102") == true)
        for part in 1...3 {
            let text = try String(contentsOfFile: "\(root)/slurm/array-\(part)-of-3.sbatch", encoding: .utf8)
            #expect(SBATCHDirectives.arguments(of: text).contains("--array=0-1%1"))
        }
        #expect(SlurmCluster.maxArraySize(config: "MaxArraySize            = 75001\nMaxJobCount = 10000") == 75001)
    }

    @Test func aClusterWithoutArraysIsAClearError() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifestPath = try ExperimentSupport.write(ExperimentSupport.manifest(sweep: Self.sweep), to: directory)
        let slurm = try FakeSlurm(directory: directory, maxArraySize: 0)
        #expect(throws: SlurmInputError.arraysDisabled) {
            try SlurmSweep.submit(manifestPath: manifestPath, outputDirectory: "\(directory)/results", request: SlurmRequest(), resume: false,
                                  dryRun: false, executable: "/opt/lorabench", cluster: slurm.cluster)
        }
        #expect(slurm.sbatchCalls.isEmpty)
    }

    // MARK: U2. collect while tasks run

    /// Two of six runs finished, one running and one pending in the queue, two gone from it:
    /// `collect` reports the queued ones as running and pending and offers to resubmit only the
    /// two missing; without Slurm here it calls none of them missing.
    @Test func collectWhileTasksRunReportsThemAsRunningOrPending() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = try finishedSweep(in: directory, finishing: 2)
        let slurm = try FakeSlurm(directory: directory, maxArraySize: 1001, queue: "101 2 RUNNING\n101 3 PENDING\n")
        let sweep = try SlurmSweep.open(directory: root)
        let ids = sweep.manifest.runs.map(\.id)

        let collected = try slurm.lorabench(["collect", root])
        #expect(collected.contains("6 runs — 2 completed, 0 diverged, 0 failed, 1 running, 1 pending, 2 missing"), "\(collected)")
        #expect(collected.contains("\(ids[2]): running (job 101 task 2 (RUNNING))"), "\(collected)")
        #expect(collected.contains("collect again when they have ended"), "\(collected)")
        #expect(!collected.contains("\(ids[2]): missing") && !collected.contains("\(ids[3]): missing"), "\(collected)")

        let unread = try slurm.lorabench(["collect", root], path: "/nonexistent")
        #expect(unread.contains("2 completed, 0 diverged, 0 failed, 0 running, 0 pending, 0 missing, 4 unfinished"), "\(unread)")
        #expect(!unread.contains("missing ("), "\(unread)")
        let status = try slurm.lorabench(["status", root], path: "/nonexistent")
        #expect(status.contains("\(ids[3])  unfinished  no outcome yet"), "\(status)")
    }

    // MARK: helpers

    /// A sweep of `SlurmSafetyTests.sweep` as `run --slurm` leaves it in `directory/results`
    /// (manifest copy, jobs.json with one job, 101, for all six runs), with its first
    /// `finishing` runs trained here.
    private func finishedSweep(in directory: String, finishing: Int) throws -> String {
        let root = "\(directory)/results"
        let manifest = try Manifest(yaml: ExperimentSupport.manifest(sweep: Self.sweep), file: "\(directory)/m.yaml")
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: root)
        for run in manifest.runs.prefix(finishing) { _ = try runner.execute(runID: run.id, progress: { _ in .more }) }
        try FileManager.default.createDirectory(atPath: "\(root)/slurm", withIntermediateDirectories: true)
        try manifest.text.write(toFile: "\(root)/slurm/m.yaml", atomically: true, encoding: .utf8)
        try manifest.text.write(toFile: "\(root)/manifest.yaml", atomically: true, encoding: .utf8)
        try writeRecord(root: root, runs: manifest.runs.map(\.id))
        return root
    }

    private func writeRecord(root: String, manifestCopy: String = "slurm/m.yaml", blasThreads: Int = 1, runs: [String] = []) throws {
        let record = SlurmRecord(manifest: "m.yaml", manifestCopy: manifestCopy, blasThreads: blasThreads,
                                 jobs: [.init(jobID: "101", submitted: "2024-05-01T12:00:00Z", runs: runs)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(record).write(to: URL(fileURLWithPath: "\(root)/slurm/jobs.json"))
    }
}

/// sbatch, scontrol and squeue as bash scripts in `directory/fake-slurm`: sbatch logs its
/// arguments, refuses an `--array` past MaxArraySize − 1 with Slurm's own words and prints job
/// ids 101, 102, …; scontrol shows the MaxArraySize; squeue prints `queue` ("%F %K %T" lines).
private struct FakeSlurm {
    let bin: String

    init(directory: String, maxArraySize: Int, queue: String = "") throws {
        bin = "\(directory)/fake-slurm"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let scripts = [
            "sbatch": """
            #!/bin/bash
            log="$(dirname "$0")/sbatch.log"
            script="${@: -1}"
            last=$(sed -n 's/^#SBATCH --array=0-\\([0-9]*\\).*/\\1/p' "$script")
            if [ "$last" -ge \(maxArraySize) ]; then
              echo "sbatch: error: Batch job submission failed: Invalid job array specification" >&2
              exit 1
            fi
            echo "$*" >> "$log"
            echo $(( $(wc -l < "$log") + 100 ))

            """,
            "scontrol": "#!/bin/bash\n[ \"$*\" = 'show config' ] && printf 'Configuration data as of now\\nMaxArraySize            = \(maxArraySize)\\nMaxJobCount = 10000\\n'\n",
            "squeue": "#!/bin/bash\ncat \"$(dirname \"$0\")/queue\"\n",
            "queue": queue,
        ]
        for (name, text) in scripts {
            try text.write(toFile: "\(bin)/\(name)", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(bin)/\(name)")
        }
    }

    var cluster: SlurmCluster { SlurmCluster(environment: ["PATH": "\(bin):/usr/bin:/bin"]) }

    /// sbatch's command lines, one per submission that it accepted.
    var sbatchCalls: [String] {
        ((try? String(contentsOfFile: "\(bin)/sbatch.log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// lorabench with `path` (by default this fake Slurm's) as its PATH: its standard output.
    func lorabench(_ arguments: [String], path: String? = nil) throws -> String {
        try run(arguments, path: path).output
    }

    /// lorabench with this fake Slurm first on PATH (or `path`): its status and both streams.
    func run(_ arguments: [String], path: String? = nil) throws -> (status: Int32, output: String, errors: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = path ?? "\(bin):/usr/bin:/bin"
        let result = try ChildProcess.run(try LorabenchProcess.executable.path, arguments, environment: environment)
        return (result.termination.shellStatus, result.output, result.errors)
    }
}

/// The arguments of a script's `#SBATCH` lines split as sbatch splits them (its `_get_argument`):
/// at unquoted white space, single or double quotes grouping, a backslash taking the next
/// character literally, an unquoted '#' ending the line.
enum SBATCHDirectives {
    static func arguments(of script: String) -> [String] {
        script.split(separator: "\n").filter { $0.hasPrefix("#SBATCH") }.flatMap { line in
            var arguments: [String] = [], current = "", started = false
            var quote: Character?, escaped = false
            for character in line.dropFirst("#SBATCH".count) {
                if escaped {
                    current.append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                    started = true
                } else if let open = quote {
                    if character == open { quote = nil } else { current.append(character) }
                } else if character == "\"" || character == "'" {
                    quote = character
                    started = true
                } else if character == "#" {
                    break
                } else if character.isWhitespace {
                    if started { arguments.append(current) }
                    (current, started) = ("", false)
                } else {
                    current.append(character)
                    started = true
                }
            }
            return started ? arguments + [current] : arguments
        }
    }
}
