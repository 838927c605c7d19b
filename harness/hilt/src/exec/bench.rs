//! What a case needs of the board under test, as a trait: [`crate::board::BoardSession`] is the real
//! bench (a launched or attached board, its mock cloud), [`crate::fake::FakeBench`] a scripted device
//! for testing the executor's verdict logic without one (probe-rs's `FakeProbe` is the model).

use hilt_link::{Cancel, Console, Port};
use hilt_model::profile::{BoardProfile, Unit};
use hilt_model::template::Value;

use crate::cloud::CloudSession;
use crate::memory::MemoryPlan;

pub trait Bench {
    fn profile(&self) -> &BoardProfile;
    /// The unit under test.
    fn unit(&self) -> &Unit;
    /// A credential field of the profile's `unit`-th unit (0 = the unit under test): `username`
    /// (plain) or `password` (secret). `Err` = the profile or the bench cannot supply it (the case is
    /// NOT_TESTED, never the device's FAIL).
    fn credential(&self, unit: usize, surface: &str, field: &str) -> Result<Value, String>;
    /// Open a console on a serial or ble link; waits in it end when `cancel` is set. `Err` says with
    /// which verdict the case stops: NOT_TESTED when the device is not on this bench (not attached,
    /// not in range), ERROR otherwise.
    fn open_console(
        &self,
        link: &str,
        cancel: Cancel,
    ) -> Result<Console<Box<dyn Port>>, (hilt_model::Verdict, String)>;
    /// The board's mock cloud, when its profile declares a cloud link.
    fn cloud(&self) -> Option<&CloudSession>;
    /// Mask `secret` in everything the bench records from now on besides the case's own transcripts:
    /// the mock cloud's evidence and the board's logged output.
    fn mask(&self, secret: &str, label: &str);
    /// How to read memory link `link` of the profile's `unit`-th unit (0 = the unit under test):
    /// `Err` = the profile or the bench cannot say (NOT_TESTED).
    fn memory_plan(&self, link: &str, unit: usize) -> Result<MemoryPlan, String> {
        Err(format!(
            "this bench reads no memory link ({link} of unit {})",
            unit + 1
        ))
    }
    /// How to list usb link `link` of the unit under test: `Err` = the profile or the bench cannot
    /// say (NOT_TESTED).
    fn usb_plan(&self, link: &str) -> Result<crate::usb::UsbPlan, String> {
        Err(format!("this bench lists no usb link ({link})"))
    }
    /// How to survey ble link `link` of the unit under test: `Err` = the profile or the bench cannot
    /// say, or the machine has no radio (NOT_TESTED).
    fn ble_plan(&self, link: &str) -> Result<crate::ble::BlePlan, String> {
        Err(format!("this bench surveys no ble link ({link})"))
    }
    /// The switch behind power link `link`: `Err` = the profile or the bench has none (NOT_TESTED).
    fn power_switch(&self, link: &str) -> Result<Box<dyn crate::power::PowerSwitch>, String> {
        Err(format!("this bench switches no power link ({link})"))
    }
    /// A case has ended: release what it alone needed (e.g. the other units of a fleet).
    fn end_case(&self) {}
}
