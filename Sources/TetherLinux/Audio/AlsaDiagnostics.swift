import CAlsa
import Glibc
import Synchronization

/// ALSA reports details (which file could not be opened, which plugin refused) through a
/// printf-style callback that writes to stderr by default. Each audio thread installs this
/// thread-local handler instead: the detail goes into the device error shown in `status`,
/// and stderr (the journal) is not flooded while a missing device is retried.
enum AlsaDiagnostics {
    private static let messages = Mutex<[UInt: String]>([:])

    static func installOnCurrentThread() {
        _ = snd_lib_error_set_local(alsaLocalErrorHandler)
    }

    /// The last detail ALSA reported on this thread, cleared by reading.
    static func takeMessage() -> String? {
        let me = UInt(pthread_self())
        return messages.withLock { $0.removeValue(forKey: me) }
    }

    static func clear() { _ = takeMessage() }

    fileprivate static func store(_ text: String) {
        let me = UInt(pthread_self())
        messages.withLock { $0[me] = text }
    }
}

private func alsaLocalErrorHandler(file: UnsafePointer<CChar>?, line: Int32, function: UnsafePointer<CChar>?, err: Int32, fmt: UnsafePointer<CChar>?, args: CVaListPointer?) {
    guard let fmt, let args else { return }
    var buffer = [CChar](repeating: 0, count: 400)
    _ = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, fmt, args) }
    var text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if err != 0 { text += ": " + AlsaDeviceError.text(err < 0 ? err : -err) }
    AlsaDiagnostics.store(text)
}
