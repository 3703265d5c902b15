import Crypto
import Foundation

/// SHA-256 hex digests (swift-crypto), used to pin downloaded model files and to name runs.
public enum SHA256Digest {
    public static func hex(of data: Data) -> String { hex(Crypto.SHA256.hash(data: data)) }

    /// Hashes a file in 4 MiB reads, so a model of any size costs constant memory. A file that
    /// cannot be read is an error naming the path.
    public static func hex(ofFile path: String) throws -> String {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        } catch {
            throw FileOperationError(operation: "open for hashing", path: path, underlying: error)
        }
        defer { try? handle.close() }
        var hasher = Crypto.SHA256()
        do {
            while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        } catch {
            throw FileOperationError(operation: "read for hashing", path: path, underlying: error)
        }
        return hex(hasher.finalize())
    }

    private static func hex(_ digest: Crypto.SHA256.Digest) -> String {
        digest.map { byte in String(byte, radix: 16).leftPadded(to: 2) }.joined()
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
