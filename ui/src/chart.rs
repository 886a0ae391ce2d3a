//! Geometry of the trend charts: readings scaled into an SVG viewBox.
//! Pure (tested on the host).

/// The drawing area: a `width` × `height` viewBox with `pad` units kept
/// free on every side (for the point markers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub pad: f64,
}

/// The value range shown: the readings' own range, widened to at least
/// `min_span` around its middle so a flat series is drawn mid-height.
pub fn value_range(values: &[f64], min_span: f64) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, min_span.max(1.0));
    }
    let span = (hi - lo).max(min_span.max(f64::EPSILON));
    let mid = (lo + hi) / 2.0;
    (mid - span / 2.0, mid + span / 2.0)
}

/// Scales `(time, value)` points into `frame`: time left to right (a single
/// time in the middle), `range` bottom to top (SVG's y grows downwards).
pub fn scale(points: &[(f64, f64)], range: (f64, f64), frame: Frame) -> Vec<(f64, f64)> {
    let t0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let t1 = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let inner_w = frame.width - 2.0 * frame.pad;
    let inner_h = frame.height - 2.0 * frame.pad;
    let (lo, hi) = range;
    points
        .iter()
        .map(|&(t, v)| {
            let x = if t1 > t0 {
                frame.pad + (t - t0) / (t1 - t0) * inner_w
            } else {
                frame.width / 2.0
            };
            let y = if hi > lo {
                frame.pad + (1.0 - (v - lo) / (hi - lo)) * inner_h
            } else {
                frame.height / 2.0
            };
            (x, y)
        })
        .collect()
}

/// The `points` attribute of an SVG `<polyline>`.
pub fn polyline(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as written beside the chart: whole numbers without decimals.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Frame = Frame {
        width: 100.0,
        height: 50.0,
        pad: 5.0,
    };

    #[test]
    fn first_and_last_points_reach_the_padded_corners() {
        let pts = scale(&[(0.0, 10.0), (10.0, 20.0)], (10.0, 20.0), FRAME);
        assert_eq!(pts, vec![(5.0, 45.0), (95.0, 5.0)]);
        assert_eq!(polyline(&pts), "5.0,45.0 95.0,5.0");
    }

    #[test]
    fn a_single_reading_sits_in_the_middle() {
        let range = value_range(&[37.0], 1.0);
        assert_eq!(range, (36.5, 37.5));
        assert_eq!(scale(&[(3.0, 37.0)], range, FRAME), vec![(50.0, 25.0)]);
    }

    #[test]
    fn ranges_are_at_least_the_minimum_span() {
        assert_eq!(value_range(&[90.0, 100.0], 4.0), (90.0, 100.0));
        assert_eq!(value_range(&[95.0, 96.0], 4.0), (93.5, 97.5));
        assert_eq!(value_range(&[], 4.0), (0.0, 4.0));
        assert_eq!(number(7.0), "7");
        assert_eq!(number(37.26), "37.3");
    }
}
