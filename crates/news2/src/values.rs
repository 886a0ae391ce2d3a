//! Validated bedside observations.
//!
//! Each NEWS2 parameter has its own type, and the only ways to obtain one are
//! the validating constructors and [`FromStr`] parsers here. A value that is
//! physiologically impossible (an SpO2 above 100 %, a negative respiration
//! rate, a temperature outside 25–45 °C) is refused with an
//! [`ObservationError`] that says what was wrong, so the scoring code never
//! sees it.
//!
//! Whole-number parameters (respiration rate, SpO2, blood pressure, pulse)
//! accept text such as `"18"` or `"18.0"` but refuse `"18.5"`: the chart's
//! bands are defined on whole numbers and silently rounding a fractional value
//! could move it across a threshold.

use std::fmt;
use std::str::FromStr;

use crate::decimal::{div_round, parse_scaled, DecimalError};

/// Why a bedside value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservationError {
    /// The text is not a number at all.
    #[error("{what}: {text:?} is not a number")]
    NotANumber {
        /// The measurement being read, e.g. "respiration rate".
        what: &'static str,
        /// The text as given.
        text: String,
    },
    /// A whole-number measurement was given with a fractional part.
    #[error("{what} must be a whole number of {unit}, got {text}")]
    NotWholeNumber {
        /// The measurement being read.
        what: &'static str,
        /// The unit the value is counted in.
        unit: &'static str,
        /// The value as given.
        text: String,
    },
    /// The value cannot be a real measurement of a living patient, or is a
    /// recording error.
    #[error("{what} of {value} {unit} is outside the accepted range {min}–{max} {unit}")]
    OutOfRange {
        /// The measurement being read.
        what: &'static str,
        /// The value as given (or as converted to the unit shown).
        value: String,
        /// Lowest accepted value.
        min: String,
        /// Highest accepted value.
        max: String,
        /// Unit of the value and limits.
        unit: &'static str,
    },
    /// The text is not one of the ACVPU levels.
    #[error("{text:?} is not an ACVPU level (expected A, C, V, P or U)")]
    UnknownConsciousness {
        /// The text as given.
        text: String,
    },
    /// The text is not an SpO2 scale of the NEWS2 chart.
    #[error("{text:?} is not a NEWS2 SpO2 scale (expected 1 or 2)")]
    UnknownSpO2Scale {
        /// The text as given.
        text: String,
    },
    /// The text does not say whether the patient breathes air or oxygen.
    #[error("{text:?} is not \"air\" or \"oxygen\"")]
    UnknownAirOrOxygen {
        /// The text as given.
        text: String,
    },
}

/// Reads `text` as a whole number for a measurement of `what` in `unit`
/// accepted between `min` and `max`.
fn parse_whole(
    text: &str,
    what: &'static str,
    unit: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, ObservationError> {
    match parse_scaled(text, 0) {
        Ok((value, true)) => Ok(value),
        Ok((_, false)) => Err(ObservationError::NotWholeNumber {
            what,
            unit,
            text: text.trim().to_owned(),
        }),
        Err(DecimalError::NotANumber) => Err(ObservationError::NotANumber {
            what,
            text: text.to_owned(),
        }),
        Err(DecimalError::TooLarge) => Err(ObservationError::OutOfRange {
            what,
            value: text.trim().to_owned(),
            min: min.to_string(),
            max: max.to_string(),
            unit,
        }),
    }
}

macro_rules! whole_number_measure {
    (
        $(#[$doc:meta])*
        $name:ident($repr:ty) {
            what: $what:literal,
            unit: $unit:literal,
            min: $min:literal,
            max: $max:literal,
            getter: $(#[$getter_doc:meta])* $getter:ident,
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            /// Lowest value accepted as a real measurement.
            pub const MIN: $repr = $min;
            /// Highest value accepted as a real measurement.
            pub const MAX: $repr = $max;
            /// What the value measures, as used in error messages.
            pub const WHAT: &'static str = $what;
            /// Unit the value is counted in.
            pub const UNIT: &'static str = $unit;

            /// Validates a measurement, refusing values outside
            #[doc = concat!("`", stringify!($min), "..=", stringify!($max), "` ", $unit, ".")]
            pub fn new(value: i64) -> Result<Self, ObservationError> {
                if value < i64::from(Self::MIN) || value > i64::from(Self::MAX) {
                    return Err(ObservationError::OutOfRange {
                        what: Self::WHAT,
                        value: value.to_string(),
                        min: Self::MIN.to_string(),
                        max: Self::MAX.to_string(),
                        unit: Self::UNIT,
                    });
                }
                <$repr>::try_from(value)
                    .map(Self)
                    .map_err(|_| ObservationError::OutOfRange {
                        what: Self::WHAT,
                        value: value.to_string(),
                        min: Self::MIN.to_string(),
                        max: Self::MAX.to_string(),
                        unit: Self::UNIT,
                    })
            }

            $(#[$getter_doc])*
            pub fn $getter(self) -> $repr {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = ObservationError;

            /// Parses decimal text (`"18"`, `"18.0"`, `"1.8e1"`); a fractional
            /// part other than zero is refused.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(parse_whole(
                    text,
                    Self::WHAT,
                    Self::UNIT,
                    i64::from(Self::MIN),
                    i64::from(Self::MAX),
                )?)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

whole_number_measure! {
    /// Respiration rate in breaths per minute, counted over a full minute.
    ///
    /// Zero (apnoea) is accepted because it is a real, and critical, finding;
    /// anything above 80/min is taken to be a recording error.
    RespirationRate(u8) {
        what: "respiration rate",
        unit: "breaths/min",
        min: 0,
        max: 80,
        getter: /// Breaths per minute.
            breaths_per_minute,
    }
}

whole_number_measure! {
    /// Peripheral oxygen saturation (SpO2) by pulse oximetry, in percent.
    ///
    /// A saturation above 100 % is impossible and refused. Low readings are
    /// kept however low they are: a falsely low reading over-escalates, which
    /// is the safe direction.
    OxygenSaturation(u8) {
        what: "oxygen saturation",
        unit: "%",
        min: 0,
        max: 100,
        getter: /// Saturation in percent.
            percent,
    }
}

whole_number_measure! {
    /// Systolic blood pressure in mmHg, the pressure NEWS2 scores.
    SystolicBp(u16) {
        what: "systolic blood pressure",
        unit: "mmHg",
        min: 20,
        max: 300,
        getter: /// Pressure in mmHg.
            mmhg,
    }
}

whole_number_measure! {
    /// Diastolic blood pressure in mmHg.
    ///
    /// NEWS2 does not score the diastolic pressure, but nurses record blood
    /// pressure as a pair and the shared record keeps both.
    DiastolicBp(u16) {
        what: "diastolic blood pressure",
        unit: "mmHg",
        min: 10,
        max: 250,
        getter: /// Pressure in mmHg.
            mmhg,
    }
}

whole_number_measure! {
    /// Pulse (heart rate) in beats per minute.
    Pulse(u16) {
        what: "pulse",
        unit: "beats/min",
        min: 10,
        max: 300,
        getter: /// Beats per minute.
            beats_per_minute,
    }
}

/// Body temperature in degrees Celsius, held as a whole number of tenths of a
/// degree.
///
/// The NEWS2 chart bands temperature at one decimal place (35.0 °C scores 3,
/// 35.1 °C scores 1), so the value is stored in tenths and never as a binary
/// fraction.
///
/// **Rounding rule.** Input with more than one decimal place is rounded to one
/// decimal place, half away from zero, on the exact decimal value *before* the
/// chart is applied: `"35.05"` is 35.1 °C (scores 1) and `"35.04"` is
/// 35.0 °C (scores 3). An `f64` is first written as its shortest decimal form
/// (`35.05_f64` is `"35.05"`), then rounded the same way, so a value reads the
/// same whether typed or computed. The accepted range, 25.0–45.0 °C, is
/// checked after rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Temperature(i16);

impl Temperature {
    /// Lowest accepted temperature, in tenths of a degree Celsius (25.0 °C).
    pub const MIN_TENTHS: i16 = 250;
    /// Highest accepted temperature, in tenths of a degree Celsius (45.0 °C).
    pub const MAX_TENTHS: i16 = 450;
    /// What the value measures, as used in error messages.
    pub const WHAT: &'static str = "temperature";

    /// Validates a temperature given in tenths of a degree Celsius
    /// (`371` is 37.1 °C).
    pub fn from_tenths(tenths: i64) -> Result<Self, ObservationError> {
        if tenths < i64::from(Self::MIN_TENTHS) || tenths > i64::from(Self::MAX_TENTHS) {
            return Err(Self::out_of_range(format_tenths(tenths)));
        }
        i16::try_from(tenths)
            .map(Self)
            .map_err(|_| Self::out_of_range(format_tenths(tenths)))
    }

    /// Validates a temperature in degrees Celsius, rounding to one decimal
    /// place as described on [`Temperature`]. Not-a-number and infinite values
    /// are refused.
    pub fn from_celsius(celsius: f64) -> Result<Self, ObservationError> {
        if !celsius.is_finite() {
            return Err(ObservationError::NotANumber {
                what: Self::WHAT,
                text: celsius.to_string(),
            });
        }
        // `Display` for f64 gives the shortest text that reads back as the
        // same value, never exponent notation.
        celsius.to_string().parse()
    }

    /// Validates a temperature in degrees Fahrenheit, as some devices and
    /// systems record it, converting to Celsius and rounding to one decimal
    /// place (half away from zero) on exact decimal arithmetic.
    pub fn from_fahrenheit_text(text: &str) -> Result<Self, ObservationError> {
        let milli_f = match parse_scaled(text, 3) {
            Ok((value, _)) => value,
            Err(DecimalError::NotANumber) => {
                return Err(ObservationError::NotANumber {
                    what: Self::WHAT,
                    text: text.to_owned(),
                })
            }
            Err(DecimalError::TooLarge) => return Err(Self::out_of_range(text.trim().to_owned())),
        };
        // °C = (°F − 32) × 5/9; in thousandths of °F to tenths of °C that is
        // (mF − 32000) × 5 / 900.
        let scaled = milli_f
            .checked_sub(32_000)
            .and_then(|v| v.checked_mul(5))
            .ok_or_else(|| Self::out_of_range(text.trim().to_owned()))?;
        Self::from_tenths(div_round(scaled, 900))
    }

    /// The temperature in tenths of a degree Celsius.
    pub fn tenths(self) -> i16 {
        self.0
    }

    /// The temperature in degrees Celsius (for charts; scoring uses
    /// [`Temperature::tenths`]).
    pub fn celsius(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    fn out_of_range(value: String) -> ObservationError {
        ObservationError::OutOfRange {
            what: Self::WHAT,
            value,
            min: "25.0".to_owned(),
            max: "45.0".to_owned(),
            unit: "°C",
        }
    }
}

/// Formats tenths as a one-decimal number, e.g. `371` as `"37.1"`, `-5` as
/// `"-0.5"`.
pub(crate) fn format_tenths(tenths: i64) -> String {
    let sign = if tenths < 0 { "-" } else { "" };
    let magnitude = tenths.unsigned_abs();
    format!("{sign}{}.{}", magnitude / 10, magnitude % 10)
}

impl FromStr for Temperature {
    type Err = ObservationError;

    /// Parses degrees Celsius from decimal text (`"37.2"`, `"37"`,
    /// `"36.95"`), rounding to one decimal place as described on
    /// [`Temperature`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match parse_scaled(text, 1) {
            Ok((tenths, _)) => Self::from_tenths(tenths),
            Err(DecimalError::NotANumber) => Err(ObservationError::NotANumber {
                what: Self::WHAT,
                text: text.to_owned(),
            }),
            Err(DecimalError::TooLarge) => Err(Self::out_of_range(text.trim().to_owned())),
        }
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} °C", format_tenths(i64::from(self.0)))
    }
}

/// Which NEWS2 oxygen saturation scale applies to the patient.
///
/// Scale 1 is for everyone unless a clinician has prescribed otherwise.
/// Scale 2 is for patients with a prescribed target saturation of 88–92 %,
/// typically those with hypercapnic respiratory failure (for example some
/// people with COPD). The RCP is explicit that scale 2 must only be used under
/// the direction of a qualified clinician, and the decision should be recorded
/// in the care plan: using scale 2 for a patient who does not need it hides
/// genuine hypoxaemia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpO2Scale {
    /// The standard scale (target 94–98 % for most patients).
    #[default]
    Scale1,
    /// The scale for a prescribed 88–92 % target.
    Scale2,
}

impl FromStr for SpO2Scale {
    type Err = ObservationError;

    /// Accepts `"1"`, `"2"`, `"scale 1"`, `"scale 2"` (any case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lowered = text.trim().to_ascii_lowercase();
        match lowered.strip_prefix("scale").unwrap_or(&lowered).trim() {
            "1" => Ok(Self::Scale1),
            "2" => Ok(Self::Scale2),
            _ => Err(ObservationError::UnknownSpO2Scale {
                text: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for SpO2Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scale1 => "SpO2 scale 1",
            Self::Scale2 => "SpO2 scale 2",
        })
    }
}

/// Whether the patient is breathing room air or receiving supplemental oxygen
/// at the time of the observations.
///
/// Any supplemental oxygen counts, by any device (nasal cannulae, mask,
/// high-flow), and scores 2 whatever the flow rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AirOrOxygen {
    /// Breathing room air.
    Air,
    /// Receiving supplemental oxygen.
    Oxygen,
}

impl AirOrOxygen {
    /// `Oxygen` when the patient is on supplemental oxygen.
    pub fn from_on_oxygen(on_oxygen: bool) -> Self {
        if on_oxygen {
            Self::Oxygen
        } else {
            Self::Air
        }
    }

    /// Whether the patient is on supplemental oxygen.
    pub fn is_oxygen(self) -> bool {
        self == Self::Oxygen
    }
}

impl FromStr for AirOrOxygen {
    type Err = ObservationError;

    /// Accepts `"air"`, `"room air"`, `"A"`, `"oxygen"`, `"O2"` (any case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "air" | "room air" | "a" => Ok(Self::Air),
            "oxygen" | "o2" | "o" => Ok(Self::Oxygen),
            _ => Err(ObservationError::UnknownAirOrOxygen {
                text: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for AirOrOxygen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Air => "air",
            Self::Oxygen => "oxygen",
        })
    }
}

/// Level of consciousness on the ACVPU scale.
///
/// NEWS2 added "new confusion" to the older AVPU scale: new-onset or worsening
/// confusion, delirium or disorientation can be the first sign of sepsis or
/// hypoxia and scores 3, the same as responding only to voice or pain, or not
/// responding at all. Long-standing confusion that is the patient's usual
/// state (for example established dementia) is recorded as alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consciousness {
    /// Fully awake, eyes open spontaneously, responds to voice and has motor
    /// function (or at their usual baseline).
    Alert,
    /// New-onset or worsening confusion, delirium or disorientation.
    NewConfusion,
    /// Responds only when spoken to.
    Voice,
    /// Responds only to a painful stimulus.
    Pain,
    /// No response to voice or pain.
    Unresponsive,
}

impl Consciousness {
    /// The chart letter: A, C, V, P or U.
    pub fn letter(self) -> char {
        match self {
            Self::Alert => 'A',
            Self::NewConfusion => 'C',
            Self::Voice => 'V',
            Self::Pain => 'P',
            Self::Unresponsive => 'U',
        }
    }
}

impl FromStr for Consciousness {
    type Err = ObservationError;

    /// Accepts the chart letters `A`, `C`, `V`, `P`, `U` or the words
    /// `alert`, `confusion` / `new confusion`, `voice`, `pain`,
    /// `unresponsive` (any case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "a" | "alert" => Ok(Self::Alert),
            "c" | "confusion" | "new confusion" | "confused" => Ok(Self::NewConfusion),
            "v" | "voice" => Ok(Self::Voice),
            "p" | "pain" => Ok(Self::Pain),
            "u" | "unresponsive" => Ok(Self::Unresponsive),
            _ => Err(ObservationError::UnknownConsciousness {
                text: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Consciousness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Alert => "alert",
            Self::NewConfusion => "new confusion",
            Self::Voice => "responds to voice",
            Self::Pain => "responds to pain",
            Self::Unresponsive => "unresponsive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_refuse_fractions_and_impossible_values() {
        assert_eq!(
            "18".parse::<RespirationRate>()
                .map(|r| r.breaths_per_minute()),
            Ok(18)
        );
        assert_eq!(
            "18.0"
                .parse::<RespirationRate>()
                .map(|r| r.breaths_per_minute()),
            Ok(18)
        );
        assert!(matches!(
            "18.5".parse::<RespirationRate>(),
            Err(ObservationError::NotWholeNumber { .. })
        ));
        assert!(matches!(
            "-1".parse::<RespirationRate>(),
            Err(ObservationError::OutOfRange { .. })
        ));
        assert!(matches!(
            RespirationRate::new(-3),
            Err(ObservationError::OutOfRange { .. })
        ));
        assert!(matches!(
            OxygenSaturation::new(101),
            Err(ObservationError::OutOfRange { .. })
        ));
        assert!(OxygenSaturation::new(100).is_ok());
        assert!(matches!(
            "ninety".parse::<Pulse>(),
            Err(ObservationError::NotANumber { .. })
        ));
        assert_eq!(
            "1e30".parse::<SystolicBp>().map_err(|e| e.to_string()),
            Err(
                "systolic blood pressure of 1e30 mmHg is outside the accepted range 20–300 mmHg"
                    .to_owned()
            )
        );
        assert!(SystolicBp::new(i64::MAX).is_err());
        assert!(DiastolicBp::new(i64::MIN).is_err());
    }

    #[test]
    fn temperature_rounds_to_tenths_on_the_decimal_text() {
        let tenths = |text: &str| text.parse::<Temperature>().map(Temperature::tenths);
        assert_eq!(tenths("35.0"), Ok(350));
        assert_eq!(tenths("35.04"), Ok(350));
        assert_eq!(tenths("35.05"), Ok(351));
        assert_eq!(tenths("37"), Ok(370));
        assert_eq!(tenths("45.04"), Ok(450));
        assert!(tenths("45.05").is_err());
        assert!(tenths("24.9").is_err());
        assert!(tenths("98.6").is_err());
        assert_eq!(
            Temperature::from_celsius(35.05).map(Temperature::tenths),
            Ok(351)
        );
        assert_eq!(
            Temperature::from_celsius(36.0).map(Temperature::tenths),
            Ok(360)
        );
        assert!(Temperature::from_celsius(f64::NAN).is_err());
        assert!(Temperature::from_celsius(f64::INFINITY).is_err());
        assert!(Temperature::from_celsius(1e300).is_err());
        assert_eq!(
            Temperature::from_fahrenheit_text("98.6").map(Temperature::tenths),
            Ok(370)
        );
        assert_eq!(
            Temperature::from_fahrenheit_text("95").map(Temperature::tenths),
            Ok(350)
        );
        assert!(Temperature::from_fahrenheit_text("37.0").is_err());
        assert_eq!(format_tenths(371), "37.1");
        assert_eq!(format_tenths(-5), "-0.5");
        assert_eq!(
            "36.1".parse::<Temperature>().map(|t| t.to_string()),
            Ok("36.1 °C".to_owned())
        );
    }

    #[test]
    fn coded_values_parse_from_chart_text() {
        assert_eq!("C".parse(), Ok(Consciousness::NewConfusion));
        assert_eq!(" unresponsive ".parse(), Ok(Consciousness::Unresponsive));
        assert!("X".parse::<Consciousness>().is_err());
        assert_eq!("Scale 2".parse(), Ok(SpO2Scale::Scale2));
        assert_eq!("1".parse(), Ok(SpO2Scale::Scale1));
        assert!("3".parse::<SpO2Scale>().is_err());
        assert_eq!("O2".parse(), Ok(AirOrOxygen::Oxygen));
        assert_eq!("room air".parse(), Ok(AirOrOxygen::Air));
        assert!("nitrogen".parse::<AirOrOxygen>().is_err());
    }
}
