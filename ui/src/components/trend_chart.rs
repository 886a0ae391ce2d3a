//! A small inline SVG line chart of one vital sign (or NEWS2) over time.

use careshare_view::api::VitalSeries;
use yew::prelude::*;

use crate::chart::{number, polyline, scale, value_range, Frame};
use crate::clock::Clock;

const FRAME: Frame = Frame {
    width: 320.0,
    height: 110.0,
    pad: 10.0,
};
/// Room on the left for the range labels.
const LEFT: f64 = 34.0;

/// The smallest value range drawn, so small changes do not look dramatic.
fn min_span(key: &str) -> f64 {
    match key {
        "news2" => 4.0,
        "respiration-rate" | "spo2" => 6.0,
        "systolic-bp" | "pulse" => 30.0,
        "temperature" => 1.5,
        _ => 1.0,
    }
}

#[derive(Properties, PartialEq)]
pub struct TrendProps {
    pub series: VitalSeries,
    pub clock: Clock,
}

#[component]
pub fn TrendChart(props: &TrendProps) -> Html {
    let s = &props.series;
    let clock = props.clock;
    let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
    let range = value_range(&values, min_span(&s.key));
    let raw: Vec<(f64, f64)> = s
        .points
        .iter()
        .map(|p| (p.at.timestamp() as f64, p.value))
        .collect();
    let plot = Frame {
        width: FRAME.width - LEFT,
        ..FRAME
    };
    let pts: Vec<(f64, f64)> = scale(&raw, range, plot)
        .into_iter()
        .map(|(x, y)| (x + LEFT, y))
        .collect();
    let latest = s.points.last();
    let summary = match latest {
        Some(p) => format!(
            "{} trend: {} reading{}, latest {} {} at {}{}",
            s.label,
            s.points.len(),
            if s.points.len() == 1 { "" } else { "s" },
            number(p.value),
            s.unit,
            clock.when(p.at),
            if p.pending { " (pending)" } else { "" }
        ),
        None => format!("{}: no readings", s.label),
    };
    let (lo, hi) = range;
    let top = FRAME.pad;
    let bottom = FRAME.height - FRAME.pad;
    html! {
        <figure class="trend" data-series={s.key.clone()}>
            <figcaption>
                <span class="trend-label">{ &s.label }</span>
                if let Some(p) = latest {
                    <span class="trend-latest">
                        { format!("{} {}", number(p.value), s.unit) }
                        if p.pending { <span class="pending-badge">{ "Pending" }</span> }
                    </span>
                }
            </figcaption>
            <svg class="trend-chart" viewBox={format!("0 0 {} {}", FRAME.width, FRAME.height)}
                role="img" aria-label={summary.clone()} preserveAspectRatio="xMidYMid meet">
                <title>{ summary }</title>
                <line class="trend-gridline" x1={LEFT.to_string()} x2={FRAME.width.to_string()}
                    y1={top.to_string()} y2={top.to_string()} />
                <line class="trend-gridline" x1={LEFT.to_string()} x2={FRAME.width.to_string()}
                    y1={bottom.to_string()} y2={bottom.to_string()} />
                <text class="trend-axis" x="2" y={(top + 4.0).to_string()}>{ number(hi) }</text>
                <text class="trend-axis" x="2" y={(bottom + 2.0).to_string()}>{ number(lo) }</text>
                if pts.len() > 1 {
                    <polyline class="trend-line" points={polyline(&pts)} />
                }
                { for s.points.iter().zip(pts.iter()).map(|(p, (x, y))| {
                    let class = classes!("trend-point", p.pending.then_some("trend-point-pending"));
                    let label = format!(
                        "{} {} at {}{}",
                        number(p.value),
                        s.unit,
                        clock.when(p.at),
                        if p.pending { " (pending)" } else { "" }
                    );
                    html! {
                        <circle {class} cx={format!("{x:.1}")} cy={format!("{y:.1}")}
                            r={if p.pending { "4.5" } else { "3.5" }}>
                            <title>{ label }</title>
                        </circle>
                    }
                }) }
            </svg>
            if let (Some(first), Some(last)) = (s.points.first(), s.points.last()) {
                <div class="trend-times" aria-hidden="true">
                    <span>{ clock.when(first.at) }</span>
                    if s.points.len() > 1 { <span>{ clock.when(last.at) }</span> }
                </div>
            }
        </figure>
    }
}
