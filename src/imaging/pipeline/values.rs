//! Parameter values that are more than a number: colours, convolution kernels, gravity and
//! focus points. Each parses from its flat-field text exactly as the OpenAPI document's pattern
//! says, and (de)serialises in the stored JSON form.

use serde::{Deserialize, Serialize};

/// An sRGB colour, written `RRGGBB` or `RRGGBBAA` in hex (a leading `#` is allowed); stored
/// as lowercase `rrggbb`, or `rrggbbaa` when not opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    /// 255 is opaque.
    pub a: u8,
}

impl Colour {
    /// Parses `RRGGBB` or `RRGGBBAA` (hex, either case, optional leading `#`).
    pub fn parse(text: &str) -> Option<Colour> {
        let hex = text.strip_prefix('#').unwrap_or(text);
        if !matches!(hex.len(), 6 | 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Colour {
            r: byte(0)?,
            g: byte(2)?,
            b: byte(4)?,
            a: if hex.len() == 8 { byte(6)? } else { 255 },
        })
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x}{:02x}{:02x}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02x}", self.a)?;
        }
        Ok(())
    }
}

impl Serialize for Colour {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Colour::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a colour: use RRGGBB or RRGGBBAA hex"))
        })
    }
}

/// The named convolution kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelName {
    /// 4-neighbour Laplacian: edges bright, flat areas black.
    Edge,
    /// Sobel gradient magnitude (both directions).
    Sobel,
    /// Relief lit from the top left.
    Emboss,
    /// 8-neighbour Laplacian: stronger outlines than `edge`.
    Outline,
    /// 3×3 sharpen.
    Sharpen,
    /// 3×3 mean.
    Box,
    /// 5×5 binomial Gaussian.
    Gaussian,
}

impl KernelName {
    const ALL: [(&'static str, KernelName); 7] = [
        ("edge", KernelName::Edge),
        ("sobel", KernelName::Sobel),
        ("emboss", KernelName::Emboss),
        ("outline", KernelName::Outline),
        ("sharpen", KernelName::Sharpen),
        ("box", KernelName::Box),
        ("gaussian", KernelName::Gaussian),
    ];
}

/// A convolution kernel: a name, or 9 (3×3) or 25 (5×5) weights row by row. Written as a
/// name, a comma-separated string of numbers, or (JSON) an array of numbers; stored as the
/// name or the array.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernel {
    Named(KernelName),
    Custom(Vec<f32>),
}

impl Kernel {
    /// Parses a name or comma-separated weights (the count and range are checked by
    /// `validate`).
    pub fn parse(text: &str) -> Result<Kernel, String> {
        let text = text.trim();
        if let Some((_, name)) = KernelName::ALL.iter().find(|(n, _)| *n == text) {
            return Ok(Kernel::Named(*name));
        }
        if !text.contains(',') {
            return Err(format!(
                "`{text}` is not a kernel: name one of edge, sobel, emboss, outline, sharpen, box, gaussian, or give 9 or 25 comma-separated numbers"
            ));
        }
        text.split(',')
            .map(|n| {
                kernel_weight(n)
                    .ok_or_else(|| format!("`{n}` is not a weight: a decimal number from -1000 to 1000"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Kernel::Custom)
    }
}

/// One weight of a written kernel, exactly as the OpenAPI document's pattern says: an optional
/// `-`, up to three integer digits (or `1000`) and up to six decimals; no spaces or exponents.
fn kernel_weight(text: &str) -> Option<f32> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = (1..=3).contains(&int.len()) || (int == "1000" && frac.bytes().all(|b| b == b'0'));
    let frac_ok = !digits.contains('.') || (1..=6).contains(&frac.len());
    (int_ok && frac_ok && all_digits(int) && all_digits(frac))
        .then(|| text.parse().ok())
        .flatten()
}

impl Serialize for Kernel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Kernel::Named(name) => name.serialize(s),
            Kernel::Custom(weights) => weights.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Kernel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Weights(Vec<f32>),
        }
        match Written::deserialize(d)? {
            Written::Text(text) => Kernel::parse(&text).map_err(serde::de::Error::custom),
            Written::Weights(weights) => Ok(Kernel::Custom(weights)),
        }
    }
}

/// Which part of the image `fit=cover` keeps (or where `fit=pad` places it): a compass point,
/// the centre, or `smart` (the most salient region, see `ops/smart.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gravity {
    #[default]
    #[serde(rename = "center", alias = "centre")]
    Centre,
    North,
    South,
    East,
    West,
    Northeast,
    Northwest,
    Southeast,
    Southwest,
    Smart,
}

impl Gravity {
    /// Every gravity by its name, in the order the docs list them.
    pub const ALL: [(&'static str, Gravity); 10] = [
        ("center", Gravity::Centre),
        ("north", Gravity::North),
        ("south", Gravity::South),
        ("east", Gravity::East),
        ("west", Gravity::West),
        ("northeast", Gravity::Northeast),
        ("northwest", Gravity::Northwest),
        ("southeast", Gravity::Southeast),
        ("southwest", Gravity::Southwest),
        ("smart", Gravity::Smart),
    ];

    pub fn parse(text: &str) -> Option<Gravity> {
        Gravity::ALL.iter().find(|(n, _)| *n == text).map(|(_, g)| *g)
    }

    pub fn is_centre(&self) -> bool {
        *self == Gravity::Centre
    }

    /// Where along each axis the kept (or placed) part sits, as a fraction of the free space:
    /// 0 the left/top edge, 0.5 the middle, 1 the right/bottom edge. `None` for `smart`.
    pub fn anchor(self) -> Option<(f64, f64)> {
        Some(match self {
            Gravity::Centre => (0.5, 0.5),
            Gravity::North => (0.5, 0.0),
            Gravity::South => (0.5, 1.0),
            Gravity::East => (1.0, 0.5),
            Gravity::West => (0.0, 0.5),
            Gravity::Northeast => (1.0, 0.0),
            Gravity::Northwest => (0.0, 0.0),
            Gravity::Southeast => (1.0, 1.0),
            Gravity::Southwest => (0.0, 1.0),
            Gravity::Smart => return None,
        })
    }
}

/// A focus point as fractions of the width and height (0–1 each), written `fx,fy`; stored as
/// `[fx, fy]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focus {
    pub x: f32,
    pub y: f32,
}

impl Focus {
    /// Parses `fx,fy`: two decimals from 0 to 1 (`0`, `1`, `0.25`, `1.0`; up to six decimals,
    /// no spaces), exactly the OpenAPI document's pattern.
    pub fn parse(text: &str) -> Option<Focus> {
        let (x, y) = text.split_once(',')?;
        Some(Focus {
            x: fraction(x)?,
            y: fraction(y)?,
        })
    }
}

/// `0`, `1`, `0.d…` or `1.0…` with one to six decimals.
fn fraction(text: &str) -> Option<f32> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac_ok =
        !text.contains('.') || ((1..=6).contains(&frac.len()) && frac.bytes().all(|b| b.is_ascii_digit()));
    let int_ok = int == "0" || (int == "1" && frac.bytes().all(|b| b == b'0'));
    (int_ok && frac_ok).then(|| text.parse().ok()).flatten()
}

impl Serialize for Focus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.x, self.y].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Focus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Pair([f32; 2]),
        }
        match Written::deserialize(d)? {
            Written::Text(text) => Focus::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a focus point: use fx,fy with fractions 0 to 1"
                ))
            }),
            // The range is checked by `validate`, which names the parameter.
            Written::Pair([x, y]) => Ok(Focus { x, y }),
        }
    }
}
