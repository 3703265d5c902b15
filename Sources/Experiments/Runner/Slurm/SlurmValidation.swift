import Foundation
import LoRABenchResults

/// A value that must not reach a Slurm script or be trusted from a sweep's record: each names
/// the option (or the file and field), what was found and what is allowed.
public enum SlurmInputError: Error, Equatable, CustomStringConvertible {
    /// A `run --slurm` option (`--partition`, `--out`, …).
    case invalidOption(option: String, found: String, allowed: String)
    /// A field of `slurm/jobs.json` (`blas_threads`, `jobs[2].job_id`, …).
    case invalidRecord(path: String, field: String, found: String, allowed: String)
    /// The cluster cannot run job arrays at all.
    case arraysDisabled

    public var description: String {
        switch self {
        case let .invalidOption(option, found, allowed):
            return "\(option): found \(found); allowed: \(allowed)"
        case let .invalidRecord(path, field, found, allowed):
            return "\(path): field '\(field)': found \(found); allowed: \(allowed). The file is written by `lorabench run --slurm`: "
                + "restore it, or submit the sweep again into a new --out"
        case .arraysDisabled:
            return "this cluster disables job arrays (MaxArraySize = 0 in `scontrol show config`), and lorabench submits a sweep as one "
                + "array task per run: ask the cluster's admins for arrays, or train the sweep without --slurm"
        }
    }
}

/// How a value reads in an error: quoted, control characters escaped (a newline shows as \n), and
/// at most 60 characters, so that an error never carries more than a line of anyone's file.
package func visible(_ text: String) -> String {
    let scalars = Array(text.unicodeScalars)
    // A long value is shown around its first control character, the one the error is about.
    let firstControl = scalars.firstIndex { $0.properties.generalCategory == .control } ?? 0
    let start = scalars.count > 60 ? max(0, min(firstControl - 40, scalars.count - 60)) : 0
    var shown = start > 0 ? "…" : ""
    for scalar in scalars[start..<min(start + 60, scalars.count)] {
        switch scalar {
        case "\n": shown += "\\n"
        case "\r": shown += "\\r"
        case "\t": shown += "\\t"
        case "\0": shown += "\\0"
        default:
            shown += scalar.properties.generalCategory == .control
                ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
    }
    return "'" + shown + (start + 60 < scalars.count ? "…'" : "'")
}

/// Whether `text` has no control character: a newline (or NUL, CR, …) in a value would end an
/// `#SBATCH` line and start a shell command.
package func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
}

/// `text` as one `#SBATCH` argument: bare when plainly safe, else in double quotes with `"` and
/// `\` escaped, which sbatch's directive parser undoes (it splits unquoted text at spaces and
/// takes an unquoted `#` as the start of a comment).
package func sbatchQuoted(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,@%".contains($0)) }) { return text }
    return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

extension SlurmRequest {
    static let partitionAllowed = "a partition name (or a comma-separated list) of letters, digits, '_', '.' and '-'"
    static let timeAllowed = "a time limit as sbatch takes it: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (digits, ':' and '-'), or UNLIMITED"
    static let memoryAllowed = "a whole number with an optional unit K, M, G or T (e.g. 4G)"
    static let extraAllowed = "one sbatch option on one line, starting with '-' (e.g. --qos=low), other than --array, which lorabench sets"
    /// Far above any node's CPU count, and small enough for every thread-count API.
    static let cpusLimit = 4096

    /// Throws `SlurmInputError.invalidOption` for the first value that could not be written into
    /// an `#SBATCH` line as one directive.
    public func validate() throws {
        if let partition {
            let names = partition.split(separator: ",", omittingEmptySubsequences: false)
            guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) } })
            else { throw SlurmInputError.invalidOption(option: "--partition", found: visible(partition), allowed: Self.partitionAllowed) }
        }
        if let time, !Self.isTimeLimit(time) {
            throw SlurmInputError.invalidOption(option: "--time", found: visible(time), allowed: Self.timeAllowed)
        }
        if let memory, !Self.isMemorySize(memory) {
            throw SlurmInputError.invalidOption(option: "--mem", found: visible(memory), allowed: Self.memoryAllowed)
        }
        if let cpusPerTask, !(1...Self.cpusLimit).contains(cpusPerTask) {
            throw SlurmInputError.invalidOption(option: "--cpus-per-task", found: "\(cpusPerTask)", allowed: "an integer from 1 to \(Self.cpusLimit)")
        }
        if let maxParallel, maxParallel < 1 {
            throw SlurmInputError.invalidOption(option: "--max-parallel", found: "\(maxParallel)", allowed: "an integer ≥ 1")
        }
        for argument in extraArguments {
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            // sbatch takes -a5, --array=… and any unambiguous prefix of it (--arr=…).
            let setsArray = name.hasPrefix("--") ? name.count > 4 && "--array".hasPrefix(name) : name.hasPrefix("-a")
            guard argument.hasPrefix("-"), isOneLine(argument), !setsArray else { throw SlurmInputError.invalidOption(option: "--sbatch-arg", found: visible(argument), allowed: Self.extraAllowed) }
        }
    }

    private static func isTimeLimit(_ time: String) -> Bool {
        if ["UNLIMITED", "INFINITE"].contains(time.uppercased()) { return true }
        let parts = time.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let clock = parts.last else { return false }
        let fields = clock.split(separator: ":", omittingEmptySubsequences: false)
        let digits = { (field: Substring) in !field.isEmpty && field.count <= 8 && field.allSatisfy { $0.isASCII && $0.isNumber } }
        guard fields.count <= 3, fields.allSatisfy(digits) else { return false }
        return parts.count == 1 || digits(parts[0])
    }

    private static func isMemorySize(_ memory: String) -> Bool {
        let number = memory.last.map { "KMGTkmgt".contains($0) } == true ? memory.dropLast() : Substring(memory)
        return !number.isEmpty && number.count <= 15 && number.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

extension SlurmRecord {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        manifest = try container.decode(String.self, forKey: .manifest)
        manifestCopy = try container.decode(String.self, forKey: .manifestCopy)
        // Read as any number: JSONDecoder calls a number too large for Int invalid JSON, naming no field.
        let threads = try container.decode(Double.self, forKey: .blasThreads)
        guard threads.rounded() == threads, abs(threads) <= Double(Int32.max) else {
            throw DecodingError.dataCorruptedError(forKey: .blasThreads, in: container, debugDescription: "not an integer in range")
        }
        blasThreads = Int(threads)
        jobs = try container.decode([Job].self, forKey: .jobs)
    }

    /// Decodes `slurm/jobs.json` and checks every field, so that nothing read back from it can
    /// trap a task, point outside the results folder at `root`, or hand squeue an option.
    static func read(_ data: Data, path: String, root: String) throws -> SlurmRecord {
        let record: SlurmRecord
        do {
            record = try JSONDecoder().decode(SlurmRecord.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw SlurmInputError.invalidRecord(path: path, field: fieldName(context.codingPath + [key]), found: "nothing (the field is missing)",
                                                allowed: "a record written by lorabench run --slurm")
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            throw SlurmInputError.invalidRecord(path: path, field: fieldName(context.codingPath), found: "a value of another type",
                                                allowed: "a value of type \(type)")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw SlurmInputError.invalidRecord(path: path, field: fieldName(context.codingPath), found: "a number out of range",
                                                allowed: "an integer from 1 to \(SlurmRequest.cpusLimit)")
        } catch {
            throw SlurmInputError.invalidRecord(path: path, field: "(document)", found: "text that is not a JSON object",
                                                allowed: "the JSON record written by lorabench run --slurm")
        }
        func invalid(_ field: String, _ found: String, _ allowed: String) -> SlurmInputError {
            .invalidRecord(path: path, field: field, found: found, allowed: allowed)
        }
        guard !record.manifest.isEmpty, isOneLine(record.manifest) else {
            throw invalid("manifest", visible(record.manifest), "the manifest's path as given to lorabench run, on one line")
        }
        _ = try manifestCopyPath(record.manifestCopy, root: root, recordPath: path)
        guard (1...SlurmRequest.cpusLimit).contains(record.blasThreads) else {
            throw invalid("blas_threads", "\(record.blasThreads)", "an integer from 1 to \(SlurmRequest.cpusLimit)")
        }
        for (index, job) in record.jobs.enumerated() {
            guard !job.jobID.isEmpty, job.jobID.count <= 20, job.jobID.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw invalid("jobs[\(index)].job_id", visible(job.jobID), "a Slurm job id (digits, as sbatch --parsable prints it)")
            }
            guard ISO8601DateFormatter().date(from: job.submitted) != nil else {
                throw invalid("jobs[\(index)].submitted", visible(job.submitted), "an ISO 8601 date and time (2024-05-01T12:00:00Z)")
            }
            for (task, run) in job.runs.enumerated() where !isRunID(run) {
                throw invalid("jobs[\(index)].runs[\(task)]", visible(run), "a run id of letters, digits, '.', '_', '+' and '-', not starting with '.'")
            }
        }
        return record
    }

    /// The manifest copy's full path, once it is known to lie inside the results folder: relative,
    /// with no `.` or `..` step, and still inside once symbolic links are followed.
    static func manifestCopyPath(_ copy: String, root: String, recordPath: String) throws -> String {
        let allowed = "a relative path inside the results folder, such as slurm/<manifest>.yaml (not absolute, no '..')"
        let steps = copy.split(separator: "/", omittingEmptySubsequences: false)
        guard !copy.isEmpty, isOneLine(copy), !copy.hasPrefix("/"), steps.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw SlurmInputError.invalidRecord(path: recordPath, field: "manifest_copy", found: visible(copy), allowed: allowed)
        }
        let path = "\(root)/\(copy)"
        guard let resolvedRoot = resolvedPath(root), let resolved = resolvedPath(path) else {
            throw ResultsError.missingFile(path: path, producer: "lorabench run MANIFEST --slurm --out \(root)")
        }
        guard resolved.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/") else {
            throw SlurmInputError.invalidRecord(path: recordPath, field: "manifest_copy",
                                                found: "\(visible(copy)), a symbolic link that leads outside the results folder", allowed: allowed)
        }
        return path
    }

    private static func resolvedPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func fieldName(_ path: [any CodingKey]) -> String {
        path.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined().drop { $0 == "." }.description
    }
}

/// Whether `id` could be a run id (`lora-r4-s0-1a2b3c`): also a safe folder name and shell word.
package func isRunID(_ id: String) -> Bool {
    !id.isEmpty && !id.hasPrefix(".") && id.count <= 255 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._+-".contains($0)) }
}
