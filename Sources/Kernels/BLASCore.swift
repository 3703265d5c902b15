import CBLAS
import Foundation

/// Which of OpenBLAS's kernel sets this process runs, and the one to ask for when OpenBLAS
/// chose too weak a set for the CPU.
///
/// OpenBLAS picks its kernels from the CPU's identity when the library loads (before any of our
/// code runs). Version 0.3.21, Debian 12's, does not know CPUs newer than Cooper Lake: on a
/// Sapphire Rapids KVM guest it falls back to its Prescott (SSE3) kernels, and sgemm runs at
/// 20 GFLOP/s instead of the 130–150 GFLOP/s its AVX-512 kernels reach on one thread
/// (measured with a C loop over 2048×768×768 sgemm). `OPENBLAS_CORETYPE` overrides the choice,
/// but only when set before the library loads, so the command line re-executes itself with it.
public enum BLASCore {
    /// The kernel set OpenBLAS loaded ("Prescott", "Haswell", "SkylakeX", …).
    public static var loaded: String { String(cString: openblas_get_corename()) }

    /// The kernel set to ask for, or nil when the loaded one already uses the CPU's widest
    /// vector instructions (or the CPU's features cannot be read). `flags` are /proc/cpuinfo's.
    public static func better(than loaded: String, cpuFlags flags: Set<String>) -> String? {
        let wanted: (name: String, level: Int)
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            wanted = flags.contains("avx512_bf16") ? ("Cooperlake", 3) : ("SkylakeX", 3)
        } else if flags.contains("avx2"), flags.contains("fma") {
            wanted = ("Haswell", 2)
        } else {
            return nil
        }
        return vectorLevel(of: loaded) < wanted.level ? wanted.name : nil
    }

    /// 3 for OpenBLAS's AVX-512 kernel sets, 2 for its AVX2 ones, 1 for any other.
    static func vectorLevel(of core: String) -> Int {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake": return 2
        default: return 1
        }
    }

    /// The x86 feature flags of the first CPU in /proc/cpuinfo; empty where there is none.
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// What OpenBLAS's idle worker threads spin for before they sleep, as OPENBLAS_THREAD_TIMEOUT's
    /// power of two in CPU cycles. OpenBLAS's default, 2²⁸ cycles (about 0.1 s), keeps a worker
    /// spinning through the whole gap between two GEMMs of a training step, on the core that the
    /// elementwise passes and the narrow adapter products (`forEachChunk`) want for their second
    /// worker. 2¹⁶ (about 30 µs) lets it sleep: a LoRA step on two threads went from 0.571 s to
    /// 0.505 s (medians of 4 alternating runs; in another such run 2¹², 2¹⁴ and 2¹⁶ were within
    /// 3 % of each other and 2²² took 0.531 s).
    public static let threadTimeout = "16"

    /// The variables OpenBLAS must find when it loads, which this process lacks: the kernel set
    /// (`correction`) and the idle workers' spin time (`threadTimeout`). A value the user set is
    /// never replaced. Empty when the process already runs as it should.
    public static func startupEnvironment(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var missing: [String: String] = [:]
        if let core = correction(environment: environment) { missing["OPENBLAS_CORETYPE"] = core }
        if environment["OPENBLAS_THREAD_TIMEOUT"] == nil { missing["OPENBLAS_THREAD_TIMEOUT"] = threadTimeout }
        return missing
    }

    /// The kernel set this process should run with: nil when `OPENBLAS_CORETYPE` is already set
    /// (the user's or an earlier re-execution's choice stands) or OpenBLAS chose well. Every
    /// process starts here, so /proc/cpuinfo is read only when a wider set could exist.
    public static func correction(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let core = loaded
        guard environment["OPENBLAS_CORETYPE"] == nil, vectorLevel(of: core) < 3 else { return nil }
        return better(than: core, cpuFlags: cpuFlags())
    }
}
