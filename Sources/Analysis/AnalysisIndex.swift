import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// The analysis report: `index.html` in an analysis folder, every figure in it (in name order)
/// with the CSV files beside them, rebuilt after each `lorabench analyze` command.
public enum AnalysisIndex {
    /// How the page's head begins; an index.html that begins otherwise is not one this wrote.
    static let head = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>LoRABench analyses</title>"

    /// The path of the index in `directory`.
    public static func path(in directory: String) -> String { "\(directory)/index.html" }

    /// Whether the index may be rebuilt: it is the folder's own, rebuilt after every `analyze`
    /// command, when `analyze` wrote it; another index.html (the user's own page) is kept unless
    /// `overwrite` (`--force`), as every command keeps an existing output.
    public static func check(directory: String, overwrite: Bool) throws {
        let index = path(in: directory)
        guard !overwrite, FileManager.default.fileExists(atPath: index) else { return }
        guard let handle = FileHandle(forReadingAtPath: index) else { throw OutputFileError.exists(path: index) }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: head.utf8.count)) ?? nil
        guard let start, String(decoding: start, as: UTF8.self) == head else { throw OutputFileError.exists(path: index) }
    }

    public static func write(directory: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let escape = SVGPlot.SVGWriter.escape
        var html = head + """

        <style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
        figure{margin:2em 0}img{max-width:100%}figcaption{color:#555;font-size:0.9em}</style></head><body>
        <h1>Analyses of trained adapters</h1>
        <p>Written by <code>lorabench analyze</code>: subspace similarity and ΔW statistics (LoRA paper, section 7),
        magnitude and direction changes (DoRA paper, section 2.2) and AdaLoRA's rank allocation.</p>
        <h2>Data</h2><ul>

        """
        for name in names where name.hasSuffix(".csv") { html += "<li><a href=\"\(escape(name))\">\(escape(name))</a></li>\n" }
        html += "</ul>\n<h2>Figures</h2>\n"
        for name in names where name.hasSuffix(".svg") {
            html += "<figure><img src=\"\(escape(name))\" alt=\"\(escape(name))\"><figcaption>\(escape(name))</figcaption></figure>\n"
        }
        html += "</body></html>\n"
        try AtomicFile.write(html, to: path(in: directory))
    }
}
