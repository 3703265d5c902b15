import Foundation

/// Decoded weights (or a tokenizer) kept once per process and file: every task built from one model
/// (another sweep in the same process, the tests) shares them instead of decoding the file again.
final class SharedWeights<Weights>: @unchecked Sendable {
    // @unchecked: `decoded` is read and written only under `lock`.
    private let lock = NSLock()
    private var decoded: [String: Weights] = [:]

    /// The weights of `path`, decoded by `decode` on first use.
    func weights(_ path: String, decode: () throws -> Weights) rethrows -> Weights {
        try lock.withLock {
            if let cached = decoded[path] { return cached }
            let weights = try decode()
            decoded[path] = weights
            return weights
        }
    }
}
