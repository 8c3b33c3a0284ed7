// The technician's flow through the real screens on a simulator or device: list, job, reveal
// refused then shown, en route, on site, close with a report, and reveal refused after the close.
// The app runs with `-ui-testing`: a fresh vault in a temporary directory, a fresh Keychain
// namespace, and one fake job sealed and delivered locally (no server needed).
import XCTest

final class TechnicianFlowUITests: XCTestCase {
    private let name = "Fake Customer"
    private let doorCode = "0000A"

    override func setUp() {
        continueAfterFailure = false
    }

    private func launch(_ extra: [String] = []) -> XCUIApplication {
        let app = XCUIApplication()
        app.launchArguments = ["-ui-testing"] + extra
        app.launch()
        return app
    }

    private func element(_ app: XCUIApplication, _ id: String) -> XCUIElement {
        app.descendants(matching: .any)[id]
    }

    private func tap(_ app: XCUIApplication, _ id: String) {
        let e = element(app, id)
        XCTAssertTrue(e.waitForExistence(timeout: 10), "\(id) not found")
        e.tap()
    }

    func testFullFlow() {
        let app = launch()
        tap(app, "job:WO-UITEST-0001")

        // Assigned: refused, with the reason.
        tap(app, "reveal")
        XCTAssertTrue(app.staticTexts["Customer · Shown when en route or on site"].waitForExistence(timeout: 10))
        XCTAssertFalse(element(app, "value:customer_name").exists)

        tap(app, "hide")
        tap(app, "action:enRoute")
        tap(app, "reveal")
        let shownName = element(app, "value:customer_name")
        XCTAssertTrue(shownName.waitForExistence(timeout: 10))
        XCTAssertEqual(shownName.label, name)
        XCTAssertFalse(element(app, "value:door_code").exists)

        tap(app, "hide")
        tap(app, "action:onSite")
        tap(app, "reveal")
        XCTAssertTrue(element(app, "value:door_code").waitForExistence(timeout: 10))
        XCTAssertEqual(element(app, "value:door_code").label, doorCode)

        // The app switcher: the privacy cover replaces the screen and the values are dropped.
        XCUIDevice.shared.press(.home)
        app.activate()
        XCTAssertTrue(element(app, "reveal").waitForExistence(timeout: 10))
        XCTAssertFalse(element(app, "value:door_code").exists)

        // An empty report is refused; a real one closes and shreds.
        tap(app, "close")
        XCTAssertEqual(element(app, "message").label, "Write what was done before closing the job.")
        tap(app, "report")
        app.typeText("Outlet fitted (UI test report).")
        tap(app, "close")
        let message = element(app, "message")
        XCTAssertTrue(message.waitForExistence(timeout: 10))
        let closed = NSPredicate(format: "label CONTAINS %@", "Customer data destroyed")
        expectation(for: closed, evaluatedWith: message)
        waitForExpectations(timeout: 10)
        XCTAssertFalse(element(app, "reveal").exists)
        XCTAssertFalse(element(app, "value:door_code").exists)
    }

    func testRevealDeniedAfterClose() {
        let app = launch(["-seed-closed"])
        tap(app, "job:WO-UITEST-0001")
        let header = element(app, "header")
        XCTAssertTrue(header.waitForExistence(timeout: 10))
        XCTAssertTrue(header.label.contains("Completed"))
        XCTAssertTrue(element(app, "access").label.contains("Customer data destroyed"))
        XCTAssertFalse(element(app, "reveal").exists)
        XCTAssertFalse(element(app, "value:customer_name").exists)
    }
}
