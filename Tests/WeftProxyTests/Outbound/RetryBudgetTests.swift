import XCTest

@testable import WeftProxy

/// The retry budget with a fake clock.
final class RetryBudgetTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testMinimumAllowsRetriesWithoutTraffic() {
        var budget = RetryBudget(ratio: 0.2, minPerSecond: 10, windowSeconds: 10, now: 0)
        XCTAssertEqual(budget.available(now: 0), 100)
        for _ in 0..<100 { XCTAssertTrue(budget.withdraw(now: 0)) }
        XCTAssertFalse(budget.withdraw(now: 0), "spent: the failure is returned as it is")
    }

    func testRatioOfRequests() {
        var budget = RetryBudget(ratio: 0.2, minPerSecond: 0, windowSeconds: 10, now: 0)
        for _ in 0..<50 { budget.deposit(now: 0) }
        XCTAssertEqual(budget.available(now: 0), 10, "20% of 50 requests")
        var granted = 0
        while budget.withdraw(now: 0) { granted += 1 }
        XCTAssertEqual(granted, 10)
    }

    func testWithdrawalsAndDepositsLeaveTheWindow() {
        var budget = RetryBudget(ratio: 0.5, minPerSecond: 1, windowSeconds: 10, now: 0)
        for _ in 0..<10 { budget.deposit(now: 0) }
        XCTAssertEqual(budget.available(now: 0), 15)
        for _ in 0..<15 { XCTAssertTrue(budget.withdraw(now: 0)) }
        XCTAssertFalse(budget.withdraw(now: 5 * second), "still inside the window")
        // Ten seconds on, both the deposits and the withdrawals have left: the minimum.
        XCTAssertEqual(budget.available(now: 10 * second), 10)
        // A long pause clears the ring once, not slot by slot forever.
        XCTAssertEqual(budget.available(now: 10_000 * second), 10)
    }

    /// An always-failing backend: each request may retry only while the budget lasts, so
    /// retries stay within 20% of requests plus the minimum.
    func testAlwaysFailingBackendIsNotStormed() {
        var budget = RetryBudget(ratio: 0.2, minPerSecond: 10, windowSeconds: 10, now: 0)
        var requests = 0
        var retries = 0
        var now: UInt64 = 0
        for _ in 0..<10_000 {  // 1,000 requests a second for 10 s, three attempts allowed each
            now += second / 1000
            budget.deposit(now: now)
            requests += 1
            for _ in 0..<2 where budget.withdraw(now: now) { retries += 1 }
        }
        XCTAssertLessThanOrEqual(Double(retries), 0.2 * Double(requests) + 100 + 1)
        XCTAssertGreaterThan(retries, 1000)
    }
}
