import Foundation
import XCTest

@testable import WeftControl

final class FolderListingTests: XCTestCase {
    func testSortedRecursiveVisibleYAMLOnly() throws {
        let folder = try ConfigFolder()
        try folder.write("b.yaml", "")
        try folder.write("a/z.yml", "")
        try folder.write("a/y.yaml", "")
        try folder.write("a/.swap.yaml", "")
        try folder.write("c.json", "")
        let listing = try FolderListing.scan(folder.path)
        XCTAssertEqual(listing.files.map(\.relativePath), ["a/y.yaml", "a/z.yml", "b.yaml"])
        XCTAssertEqual(listing.directories, [folder.path, "\(folder.path)/a"])
    }

    func testSymlinkLoopsAndDanglingLinksAreHarmless() throws {
        let folder = try ConfigFolder()
        try folder.write("a/x.yaml", "")
        try folder.symlink("a/loop", to: "..")
        try folder.symlink("dangling.yaml", to: "nowhere.yaml")
        let listing = try FolderListing.scan(folder.path)
        XCTAssertEqual(listing.files.map(\.relativePath), ["a/x.yaml"])
    }

    func testFingerprintChangesWithContent() throws {
        let folder = try ConfigFolder()
        try folder.write("a.yaml", "a: 1\n")
        let before = try FolderListing.scan(folder.path).fingerprint
        XCTAssertEqual(try FolderListing.scan(folder.path).fingerprint, before)
        try folder.write("a.yaml", "a: 12\n")
        XCTAssertNotEqual(try FolderListing.scan(folder.path).fingerprint, before)
    }

    func testUnreadableAndNonUTF8FilesAreErrors() throws {
        let folder = try ConfigFolder()
        try Data([0xff, 0xfe, 0x00]).write(to: URL(fileURLWithPath: "\(folder.path)/bin.yaml"))
        let listing = try FolderListing.scan(folder.path)
        guard case .failure(let failure) = listing.load() else { return XCTFail("expected a failure") }
        XCTAssertEqual(failure.errors.map(\.description), ["bin.yaml: is not UTF-8 text"])
    }
}

extension FolderListingTests {
    func testAFileIsNotAFolder() throws {
        let folder = try ConfigFolder()
        try folder.write("a.yaml", "")
        XCTAssertThrowsError(try FolderListing.scan("\(folder.path)/a.yaml")) { error in
            XCTAssertEqual(
                (error as? ConfigLoadFailure)?.description,
                "\(folder.path)/a.yaml: cannot read the config folder: not a folder")
        }
    }
}
