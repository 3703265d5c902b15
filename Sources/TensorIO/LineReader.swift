import Foundation

/// The lines of a text file, read a block at a time so that memory follows the longest line, not
/// the file (`infer --texts-file` with a million lines). Lines end at `\n`; a `\r` before it (a
/// Windows file) is dropped. Every failure names the file, what was being done with it and, for
/// text that is not UTF-8, the line.
public final class LineReader {
    public let path: String
    /// What the file is, for errors: "read <purpose>" ("the texts file").
    public let purpose: String
    /// The number of the line `next()` returned last (1-based).
    public private(set) var lineNumber = 0
    private var descriptor: Int32
    /// Bytes read and not yet returned start at `start`; none before `searched` is a `\n`.
    private var pending: [UInt8] = []
    private var start = 0
    private var searched = 0
    private var atEnd = false
    private static let blockSize = 1 << 16

    public init(path: String, purpose: String) throws {
        self.path = path
        self.purpose = purpose
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileOperationError(operation: "open \(purpose)", path: path, errno: errno) }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The next line without its line end, or nil after the last one.
    public func next() throws -> String? {
        while true {
            if let newline = pending[searched...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = try decode(pending[start..<newline])
                (start, searched) = (newline + 1, newline + 1)
                return line
            }
            searched = pending.count
            if atEnd {
                guard start < pending.count else { return nil }
                defer { (pending, start, searched) = ([], 0, 0) }
                return try decode(pending[start...])
            }
            // Drop the lines returned before reading on, so that `pending` holds one line at most.
            pending.removeFirst(start)
            (searched, start) = (searched - start, 0)
            try readBlock()
        }
    }

    private func readBlock() throws {
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        while true {
            let count = block.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, Self.blockSize) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileOperationError(operation: "read \(purpose)", path: path, errno: errno)
            }
            if count == 0 {
                atEnd = true
                close(descriptor)
                descriptor = -1
            } else {
                pending += block[..<count]
            }
            return
        }
    }

    private func decode(_ bytes: ArraySlice<UInt8>) throws -> String {
        lineNumber += 1
        let content = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes
        guard let line = String(validating: content, as: UTF8.self) else {
            throw FileOperationError(operation: "read \(purpose)", path: path, reason: "line \(lineNumber) is not valid UTF-8 text")
        }
        return line
    }
}
