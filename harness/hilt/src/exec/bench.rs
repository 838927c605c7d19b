//! What a case needs of the board under test, as a trait: [`crate::board::BoardSession`] is the real
//! bench (a launched or attached board, its mock cloud), [`crate::fake::FakeBench`] a scripted device
//! for testing the executor's verdict logic without one (probe-rs's `FakeProbe` is the model).

use hilt_link::{Cancel, Console, Port};
use hilt_model::profile::{BoardProfile, Unit};
use hilt_model::template::Value;

use crate::cloud::CloudSession;

pub trait Bench {
    fn profile(&self) -> &BoardProfile;
    /// The unit under test.
    fn unit(&self) -> &Unit;
    /// A credential field of the profile's `unit`-th unit (0 = the unit under test): `username`
    /// (plain) or `password` (secret). `Err` = the profile or the bench cannot supply it (the case is
    /// NOT_TESTED, never the device's FAIL).
    fn credential(&self, unit: usize, surface: &str, field: &str) -> Result<Value, String>;
    /// Open a console on a serial-like link; waits in it end when `cancel` is set.
    fn open_console(&self, link: &str, cancel: Cancel) -> Result<Console<Box<dyn Port>>, String>;
    /// The board's mock cloud, when its profile declares a cloud link.
    fn cloud(&self) -> Option<&CloudSession>;
    /// Mask `secret` in everything the bench records from now on besides the case's own transcripts:
    /// the mock cloud's evidence and the board's logged output.
    fn mask(&self, secret: &str, label: &str);
}
