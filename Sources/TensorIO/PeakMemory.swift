import Foundation

/// The process's peak resident memory (Linux's `VmHWM`), which a run resets when it starts so that
/// each run of a worker process reports its own peak, as peft's method comparison records it.
public enum PeakMemory {
    /// Resets the peak to the current resident size (writing 5 to `/proc/self/clear_refs`, Linux
    /// 4.0 on). Returns false where that is not possible: the peak then covers the process's life.
    @discardableResult
    public static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// The peak resident bytes since the last `reset` (or the process's start), nil where
    /// `/proc/self/status` has no `VmHWM` line.
    public static func bytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kibibytes = Int(fields[1]) else { return nil }
            return kibibytes * 1024
        }
        return nil
    }
}
