import Foundation
import Logging
import WeftCore
import XCTest

@testable import WeftControl

/// A temporary config folder for a test, removed at the end.
final class ConfigFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("weft-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes a file in place (open, truncate, write, close), creating folders as needed.
    func write(_ relative: String, _ text: String) throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(relative)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func remove(_ relative: String) throws {
        try FileManager.default.removeItem(atPath: "\(path)/\(relative)")
    }

    func symlink(_ relative: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(path)/\(relative)", withDestinationPath: destination)
    }

    func rename(_ from: String, _ to: String) throws {
        guard Foundation.rename("\(path)/\(from)", "\(path)/\(to)") == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
    }
}

/// Collects a source's events; every wait is bounded.
actor EventInbox {
    private var events: [ConfigEvent] = []

    func put(_ event: ConfigEvent) { events.append(event) }

    private func take() -> ConfigEvent? { events.isEmpty ? nil : events.removeFirst() }

    /// The next event, or nil after `timeout`.
    func next(timeout: Duration = .seconds(5)) async -> ConfigEvent? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let event = take() { return event }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return take()
    }
}

enum Manifests {
    static func service(port: Int = 80, ip: String = "10.96.0.10") -> String {
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: demo
        spec:
          clusterIP: \(ip)
          ports:
          - name: http
            port: \(port)
            targetPort: 8080
        """
    }

    static func route(weight: Int = 1) -> String {
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: web
          namespace: demo
        spec:
          parentRefs:
          - {group: "", kind: Service, name: web}
          rules:
          - backendRefs:
            - name: web
              port: 80
              weight: \(weight)
        """
    }

    static let mesh = """
        apiVersion: weft.dev/v1alpha1
        kind: MeshConfig
        metadata:
          name: mesh
        """
}

extension ConfigEvent {
    var state: MeshState? {
        if case .updated(let state) = self { return state }
        return nil
    }

    var isRestored: Bool {
        if case .restored = self { return true }
        return false
    }

    var errors: [String]? {
        if case .rejected(let errors) = self { return errors.map(\.description) }
        return nil
    }
}

extension Logger {
    static let test: Logger = {
        var logger = Logger(label: "weft.test.config")
        logger.logLevel = .critical
        return logger
    }()
}
